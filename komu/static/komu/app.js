/*
 * 校務 Komu — progressive enhancement.
 *
 * Every page works without this file. It only:
 *   1. collapses the main navigation on narrow screens behind a toggle
 *      button (aria-expanded), and there closes the navigation's sections
 *      that do not hold the current page (they stay one tap away),
 *   2. configures htmx and sends Django's CSRF token as X-CSRFToken,
 *   3. shows an error alert (role="alert") with a retry button when an
 *      htmx request fails. Nothing is dismissed automatically.
 *
 * Loaded with `defer` after htmx.min.js. No external requests.
 */
(function () {
  "use strict";

  var doc = document;
  var root = doc.documentElement;
  root.classList.add("js");

  var isEnglish = /^en\b/i.test(root.getAttribute("lang") || "");
  var FALLBACK_TEXT = isEnglish
    ? {
        title: "Could not communicate with the server",
        response: "The server returned an error. Please try again. If it happens again, contact your administrator.",
        send: "Could not connect. Check your network connection and try again.",
        retry: "Try again",
        close: "Close"
      }
    : {
        title: "通信できませんでした",
        response: "サーバーでエラーが発生しました。もう一度お試しください。繰り返し発生する場合は管理者に連絡してください。",
        send: "接続できませんでした。ネットワークの接続を確認して、もう一度お試しください。",
        retry: "再試行",
        close: "閉じる"
      };

  /* ---------------------------------------------------------------- */
  /* CSRF token                                                        */
  /* ---------------------------------------------------------------- */
  function readCookie(name) {
    var parts = doc.cookie ? doc.cookie.split(";") : [];
    for (var i = 0; i < parts.length; i++) {
      var part = parts[i].trim();
      if (part.substring(0, name.length + 1) === name + "=") {
        try {
          return decodeURIComponent(part.substring(name.length + 1));
        } catch (e) {
          return part.substring(name.length + 1);
        }
      }
    }
    return "";
  }

  function csrfToken() {
    var fromCookie = readCookie("csrftoken");
    if (fromCookie) {
      return fromCookie;
    }
    var meta = doc.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") || "" : "";
  }

  var SAFE_METHODS = /^(get|head|options|trace)$/i;

  /* ---------------------------------------------------------------- */
  /* Mobile navigation toggle                                          */
  /* ---------------------------------------------------------------- */
  function setupNavToggle() {
    var toggles = doc.querySelectorAll("[data-komu-nav-toggle]");
    Array.prototype.forEach.call(toggles, function (button) {
      var nav = doc.getElementById(button.getAttribute("aria-controls") || "");
      if (!nav) {
        return;
      }
      function setOpen(open) {
        button.setAttribute("aria-expanded", open ? "true" : "false");
        nav.classList.toggle("is-open", open);
      }
      setOpen(false);
      button.hidden = false;
      button.addEventListener("click", function () {
        setOpen(button.getAttribute("aria-expanded") !== "true");
      });
      nav.addEventListener("keydown", function (event) {
        if (event.key === "Escape" && button.getAttribute("aria-expanded") === "true" &&
            window.getComputedStyle(button).display !== "none") {
          setOpen(false);
          button.focus();
        }
      });
    });
  }

  /* ---------------------------------------------------------------- */
  /* Request error region                                              */
  /* ---------------------------------------------------------------- */
  function errorRegion() {
    var region = doc.getElementById("komu-request-error");
    if (!region) {
      region = doc.createElement("div");
      region.id = "komu-request-error";
      region.className = "request-error";
      region.setAttribute("role", "alert");
      var main = doc.getElementById("main") || doc.body;
      main.insertBefore(region, main.firstChild);
    }
    return region;
  }

  function text(region, key) {
    var value = region.getAttribute("data-text-" + key);
    return value || FALLBACK_TEXT[key];
  }

  var SVG_NS = "http://www.w3.org/2000/svg";
  function errorIcon() {
    var svg = doc.createElementNS(SVG_NS, "svg");
    svg.setAttribute("class", "alert__icon");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var path = doc.createElementNS(SVG_NS, "path");
    path.setAttribute("d", "M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20Zm-1 5h2v7h-2V7Zm0 9h2v2h-2v-2Z");
    svg.appendChild(path);
    return svg;
  }

  function clearError() {
    var region = doc.getElementById("komu-request-error");
    if (region) {
      region.textContent = "";
    }
  }

  function retryRequest(detail) {
    var elt = detail.elt;
    var config = detail.requestConfig || {};
    if (!elt || !doc.body.contains(elt) || !window.htmx) {
      return false;
    }
    var triggering = config.triggeringEvent;
    if (elt.tagName === "FORM" && triggering && triggering.type === "submit" &&
        typeof elt.requestSubmit === "function") {
      elt.requestSubmit();
      return true;
    }
    if (config.verb && config.path) {
      window.htmx.ajax(config.verb, config.path, {
        source: elt,
        target: config.target && doc.body.contains(config.target) ? config.target : undefined
      });
      return true;
    }
    return false;
  }

  function showError(kind, detail) {
    var region = errorRegion();
    region.textContent = "";

    var alert = doc.createElement("div");
    alert.className = "alert alert--error";
    alert.appendChild(errorIcon());

    var content = doc.createElement("div");
    content.className = "alert__content";

    var title = doc.createElement("p");
    title.className = "alert__title";
    title.textContent = text(region, "title");
    content.appendChild(title);

    var body = doc.createElement("p");
    body.className = "alert__body";
    body.textContent = text(region, kind);
    content.appendChild(body);

    var actions = doc.createElement("div");
    actions.className = "alert__actions";

    var canRetry = detail && detail.elt && doc.body.contains(detail.elt);
    if (canRetry) {
      var retry = doc.createElement("button");
      retry.type = "button";
      retry.className = "button button--compact";
      retry.textContent = text(region, "retry");
      retry.addEventListener("click", function () {
        clearError();
        if (!retryRequest(detail)) {
          showError(kind, null);
        }
      });
      actions.appendChild(retry);
    }

    var close = doc.createElement("button");
    close.type = "button";
    close.className = "button button--secondary button--compact";
    close.textContent = text(region, "close");
    close.addEventListener("click", function () {
      clearError();
      var main = doc.getElementById("main");
      if (main) {
        main.focus({ preventScroll: true });
      }
    });
    actions.appendChild(close);

    content.appendChild(actions);
    alert.appendChild(content);
    region.appendChild(alert);
  }

  /* ---------------------------------------------------------------- */
  /* htmx                                                              */
  /* ---------------------------------------------------------------- */
  // Set before htmx initialises on DOMContentLoaded (both scripts are deferred,
  // htmx first). base.html repeats the first option in <meta name="htmx-config">.
  if (window.htmx) {
    // Indicator styles are in app.css; htmx's inline <style> would need a CSP nonce.
    window.htmx.config.includeIndicatorStyles = false;
    // Never run <script> tags that arrive in swapped content.
    window.htmx.config.allowScriptTags = false;
    // Only talk to this site (the htmx 2 default, stated explicitly).
    window.htmx.config.selfRequestsOnly = true;
  }

  function setupHtmx() {
    if (!window.htmx) {
      return;
    }
    doc.body.addEventListener("htmx:configRequest", function (event) {
      var detail = event.detail;
      if (!SAFE_METHODS.test(detail.verb || "get")) {
        var token = csrfToken();
        if (token) {
          detail.headers["X-CSRFToken"] = token;
        }
      }
    });
    doc.body.addEventListener("htmx:responseError", function (event) {
      showError("response", event.detail);
    });
    doc.body.addEventListener("htmx:sendError", function (event) {
      showError("send", event.detail);
    });
    doc.body.addEventListener("htmx:timeout", function (event) {
      showError("send", event.detail);
    });
  }

  /* ---------------------------------------------------------------- */
  /* Navigation sections: all open by default (no JavaScript: nothing  */
  /* is hidden); on a narrow screen only the current page's section.   */
  /* ---------------------------------------------------------------- */
  function setupNavSections() {
    if (!window.matchMedia || !window.matchMedia("(max-width: 1023px)").matches) {
      return;
    }
    var sections = doc.querySelectorAll("details.site-nav__section:not([data-current])");
    Array.prototype.forEach.call(sections, function (section) {
      section.removeAttribute("open");
    });
  }

  function init() {
    setupNavToggle();
    setupNavSections();
    setupHtmx();
  }

  if (doc.readyState === "loading") {
    doc.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
