/*
 * 校務 Komu — account pages (komu/accounts/templates/accounts).
 *
 * Progressive enhancement only; every page works without it except the passkey ceremonies, which need
 * JavaScript by nature (django-otp-webauthn's own scripts run them).
 *   1. After a passkey registration succeeds (event "otp_webauthn.register_complete" from the package's
 *      script), go to the page named by data-passkey-done-url (the next step: recovery codes or settings).
 *   2. [data-accounts-print] buttons print the page (recovery codes; print CSS hides everything else).
 *   3. [data-accounts-copy="<id>"] buttons copy that element's text (an API token shown once).
 */
(function () {
  "use strict";

  var doc = document;

  doc.addEventListener("otp_webauthn.register_complete", function (event) {
    var holder = event.target && event.target.closest ? event.target.closest("[data-passkey-done-url]") : null;
    holder = holder || doc.querySelector("[data-passkey-done-url]");
    var url = holder ? holder.getAttribute("data-passkey-done-url") : "";
    // Only same-site paths: the value comes from the server, but never follow anything else.
    if (url && url.charAt(0) === "/" && url.charAt(1) !== "/") {
      window.location.assign(url);
    } else {
      window.location.reload();
    }
  });

  function init() {
    Array.prototype.forEach.call(doc.querySelectorAll("[data-accounts-print]"), function (button) {
      button.addEventListener("click", function () {
        window.print();
      });
    });
    Array.prototype.forEach.call(doc.querySelectorAll("[data-accounts-copy]"), function (button) {
      var source = doc.getElementById(button.getAttribute("data-accounts-copy") || "");
      if (!source || !navigator.clipboard) {
        return;
      }
      var label = button.textContent;
      button.hidden = false;
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(source.textContent.trim()).then(function () {
          button.textContent = button.getAttribute("data-copied-text") || label;
          window.setTimeout(function () { button.textContent = label; }, 3000);
        });
      });
    });
  }

  if (doc.readyState === "loading") {
    doc.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
