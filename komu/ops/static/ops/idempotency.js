/*
 * 校務 Komu — idempotency keys on writes from the UI (komu/ops/idempotency.py).
 *
 * Every POST form gets a hidden _idempotency_key when it is first submitted; a second submission of the same form
 * (a double click, the browser's "resend" after a lost connection) carries the same key, and the server answers it
 * with the first answer instead of applying it twice. A form that comes back (errors) is a new page with a new key.
 * htmx requests other than GET carry the key in the Idempotency-Key header; the key is kept on the element only
 * while its request has not succeeded, so a retry reuses it and the next, new action gets a fresh one.
 * Include it once in the base template: <script src="{% static 'ops/idempotency.js' %}" defer></script>.
 */
(function () {
  "use strict";

  function newKey() {
    if (window.crypto && window.crypto.randomUUID) {
      return window.crypto.randomUUID();
    }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form || (form.getAttribute("method") || "").toLowerCase() !== "post" || form.hasAttribute("data-no-idempotency")) {
      return;
    }
    if (!form.querySelector('input[name="_idempotency_key"]')) {
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = "_idempotency_key";
      input.value = newKey();
      form.appendChild(input);
    }
  }, true);

  document.addEventListener("htmx:configRequest", function (event) {
    var detail = event.detail;
    if (!detail || detail.verb === "get" || !detail.elt) {
      return;
    }
    var key = detail.elt.getAttribute("data-idempotency-key");
    if (!key) {
      key = newKey();
      detail.elt.setAttribute("data-idempotency-key", key);
    }
    detail.headers["Idempotency-Key"] = key;
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var detail = event.detail;
    if (detail && detail.elt && detail.successful) {
      detail.elt.removeAttribute("data-idempotency-key");
    }
  });
})();
