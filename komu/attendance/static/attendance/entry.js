/*
 * 校務 Komu — morning entry (attendance/entry.html).
 *
 * Without this file every button posts the page and the page comes back. With it:
 *   - each change is saved at once: one pupil's mark is posted to the row's URL (data-url) with the version the
 *     screen showed and an idempotency key, as an htmx-style partial request (HX-Request: true); the server
 *     answers with the row, which replaces the old one (200 saved, 400 not valid, 409 changed meanwhile);
 *   - a change that could not be sent stays pending on its row, is retried automatically with backoff (2 s, 4 s,
 *     … up to 60 s) and by a button, is resent when the browser comes back online, and leaving the page asks
 *     first: it is never silently lost. A retry carries the same key, so it is never applied twice;
 *   - 欠席, 出停 and 忌引 open a panel on the row for the reason, the 出席停止 details or the 親等;
 *   - keyboard: ↑/↓ move between pupils, ←/→ between a row's buttons, S K C H T G O choose a kind,
 *     1–3 choose in an open panel, Esc closes it.
 * Rows are posted with fetch rather than hx-post: htmx drops a queued request whose element was swapped out,
 * and a pending change must survive its row being re-rendered.
 * Kept in step with komu/attendance/selectors/registers.py (toggle_target) and views/entry.py (fields).
 */
(function () {
  "use strict";

  var doc = document;
  var form = doc.querySelector("[data-entry]");
  if (!form || !window.fetch || !window.FormData) {
    return;
  }
  var list = form.querySelector(".entry-list");
  var offline = doc.querySelector("[data-entry-offline]");
  var PANEL_KINDS = { absent: true, suspension: true, mourning: true };
  var SHORTCUTS = { s: "present", k: "absent", c: "late", h: "early_leave", t: "suspension", g: "mourning", o: "official" };
  var BACKOFF = [2, 4, 8, 16, 30, 60];
  var states = {};

  function csrfToken() {
    var match = doc.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) {
      return decodeURIComponent(match[1]);
    }
    var meta = doc.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") || "" : "";
  }

  function newKey() {
    if (window.crypto && window.crypto.randomUUID) {
      return window.crypto.randomUUID();
    }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function text(name, values) {
    var value = (offline && offline.getAttribute("data-text-" + name)) || "";
    Object.keys(values || {}).forEach(function (key) {
      value = value.replace("%(" + key + ")s", String(values[key]));
    });
    return value;
  }

  function rowOf(node) {
    return node && node.closest ? node.closest(".entry-row") : null;
  }

  function rowById(sid) {
    return doc.getElementById("pupil-" + sid);
  }

  // One queue per pupil's day mark ("<pupil>") and per period ("<pupil>:<period>"): a period change must not
  // replace a day change still waiting, or the other way round.
  function state(slot, sid) {
    if (!states[slot]) {
      states[slot] = { sid: sid || slot, inflight: null, pending: null, attempt: 0, timer: null };
    }
    return states[slot];
  }

  /* The kind a main button sets, given the row's kind (registers.toggle_target). */
  function toggleTarget(current, pressed) {
    if (pressed === "late" || pressed === "early_leave") {
      var other = pressed === "late" ? "early_leave" : "late";
      if (current === "late_early") { return other; }
      if (current === pressed) { return "present"; }
      if (current === other) { return "late_early"; }
      return pressed;
    }
    if (pressed === "official" && current === "official") {
      return "present";
    }
    return pressed;
  }

  /* ---------------------------------------------------------------- */
  /* Showing a row's state                                             */
  /* ---------------------------------------------------------------- */
  function showKind(row, kind) {
    row.setAttribute("data-kind", kind);
    var lit = kind === "late_early" ? ["late", "early_leave"] : [kind];
    Array.prototype.forEach.call(row.querySelectorAll(".entry-row__marks .mark-button"), function (button) {
      var on = lit.indexOf(button.getAttribute("data-kind")) !== -1;
      button.setAttribute("aria-pressed", on ? "true" : "false");
    });
    row.className = row.className.replace(/\bentry-row--[a-z_]+/, "entry-row--" + kind);
    roving(row);
    updateSummary();
  }

  /* The counts above the list (出席 32・欠席 2 …) follow the rows as they change. */
  function updateSummary() {
    var summary = doc.querySelector("[data-entry-summary]");
    if (!summary || !list) {
      return;
    }
    var counts = {};
    Array.prototype.forEach.call(list.querySelectorAll(".entry-row"), function (row) {
      var kind = row.getAttribute("data-kind") || "present";
      counts[kind] = (counts[kind] || 0) + 1;
    });
    Array.prototype.forEach.call(summary.querySelectorAll("[data-kind]"), function (item) {
      var n = counts[item.getAttribute("data-kind")] || 0;
      item.hidden = n === 0;
      var strong = item.querySelector("strong");
      if (strong) {
        strong.textContent = String(n);
      }
    });
  }

  function setBusy(row, busy) {
    row.classList.toggle("is-saving", busy);
    var saving = row.querySelector(".entry-row__saving");
    if (saving) {
      saving.hidden = !busy;
    }
  }

  function clearRowMessage(row) {
    var old = row.querySelector("[data-row-retry]");
    if (old) {
      old.parentNode.removeChild(old);
    }
  }

  function showFailure(row, slot, seconds, reason) {
    clearRowMessage(row);
    row.classList.add("is-failed");
    var box = doc.createElement("p");
    box.className = "entry-row__message entry-row__message--error";
    box.setAttribute("data-row-retry", "");
    box.setAttribute("role", "alert");
    var message = reason === "signin" ? text("signin") : text("retry-in", { s: seconds });
    box.appendChild(doc.createTextNode(message + " "));
    var retry = doc.createElement("button");
    retry.type = "button";
    retry.className = "button button--secondary button--compact";
    retry.textContent = text("retry-now");
    retry.addEventListener("click", function () {
      var st = state(slot);
      if (st.timer) {
        clearTimeout(st.timer);
        st.timer = null;
      }
      send(slot);
    });
    box.appendChild(retry);
    var panel = row.querySelector(".entry-row__panel");
    row.insertBefore(box, panel);
  }

  function updateOffline() {
    if (!offline) {
      return;
    }
    var n = 0;
    Object.keys(states).forEach(function (slot) {
      var st = states[slot];
      if (st.pending || st.inflight) {
        n += 1;
      }
    });
    var failed = Object.keys(states).some(function (slot) { return states[slot].attempt > 0; });
    offline.hidden = !(n && failed);
    offline.textContent = n && failed ? text("pending", { n: n }) : "";
  }

  /* ---------------------------------------------------------------- */
  /* Saving                                                            */
  /* ---------------------------------------------------------------- */
  function payloadBody(row, payload) {
    var body = new FormData();
    Object.keys(payload.fields).forEach(function (name) {
      body.append(name, payload.fields[name]);
    });
    body.append("version", payload.version !== null ? payload.version : row.getAttribute("data-version") || "0");
    body.append("key", payload.key);
    var reason = form.querySelector("[data-amendment-reason]");
    if (reason) {
      body.append("amendment_reason", reason.value);
    }
    return body;
  }

  function swapRow(oldRow, html, sid) {
    var holder = doc.createElement("template");
    holder.innerHTML = html.trim();
    var fresh = holder.content.querySelector(".entry-row");
    if (!fresh || fresh.getAttribute("data-student") !== sid) {
      return null;
    }
    var hadFocus = oldRow.contains(doc.activeElement);
    var focusKind = hadFocus && doc.activeElement.getAttribute ? doc.activeElement.getAttribute("data-kind") : null;
    oldRow.parentNode.replaceChild(fresh, oldRow);
    roving(fresh);
    updateSummary();
    if (hadFocus) {
      var target = (focusKind && fresh.querySelector('.entry-row__marks [data-kind="' + focusKind + '"]')) ||
        fresh.querySelector('.entry-row__marks [tabindex="0"]');
      if (fresh.querySelector(".entry-row__panel:not([hidden])")) {
        target = fresh.querySelector(".entry-row__panel fieldset:not([hidden]) button, .entry-row__panel fieldset:not([hidden]) select") || target;
        showCloseButton(fresh);
      }
      if (target) {
        target.focus({ preventScroll: true });
      }
    }
    return fresh;
  }

  function scheduleRetry(slot, reason) {
    var st = state(slot);
    var delay = BACKOFF[Math.min(st.attempt, BACKOFF.length - 1)];
    st.attempt += 1;
    var row = rowById(st.sid);
    if (row) {
      setBusy(row, false);
      showFailure(row, slot, delay, reason);
    }
    if (st.timer) {
      clearTimeout(st.timer);
    }
    st.timer = setTimeout(function () {
      st.timer = null;
      send(slot);
    }, delay * 1000);
    updateOffline();
  }

  function send(slot) {
    var st = state(slot);
    var sid = st.sid;
    var row = rowById(sid);
    if (!row || st.inflight || !st.pending) {
      updateOffline();
      return;
    }
    var payload = st.pending;
    st.pending = null;
    st.inflight = payload;
    setBusy(row, true);
    updateOffline();
    fetch(payload.url, {
      method: "POST",
      body: payloadBody(row, payload),
      credentials: "same-origin",
      headers: { "HX-Request": "true", "X-CSRFToken": csrfToken() }
    }).then(function (response) {
      return response.text().then(function (html) {
        return { response: response, html: html };
      });
    }).then(function (result) {
      var response = result.response;
      st.inflight = null;
      var current = rowById(sid);
      var isRow = response.headers.get("X-Komu-Row") === sid;
      if (isRow && (response.ok || response.status === 400 || response.status === 409)) {
        st.attempt = 0;
        if (response.status !== 200) {
          // The server said no (not valid, or changed meanwhile): what was queued after it was based on
          // what the screen showed then, so it is dropped; the row now shows why.
          st.pending = null;
        }
        if (current) {
          swapRow(current, result.html, sid);
        }
        if (st.pending) {
          var newRow = rowById(sid);
          if (newRow && st.pending.optimistic) {
            showKind(newRow, st.pending.optimistic);
          }
          send(slot);
        }
        updateOffline();
        return;
      }
      if (response.status === 404 || response.status === 403) {
        // The pupil or the page is no longer reachable: a retry cannot succeed.
        st.pending = null;
        st.attempt = 0;
        if (current) {
          setBusy(current, false);
          showFailure(current, slot, 0, "gone");
          current.querySelector("[data-row-retry]").firstChild.textContent = text("failed") + " ";
        }
        updateOffline();
        return;
      }
      // 5xx, or a sign-in page after the session ended: keep the change and try again.
      if (!st.pending) {
        st.pending = payload;
      }
      var signin = response.redirected || (response.ok && !isRow);
      scheduleRetry(slot, signin ? "signin" : "error");
    }).catch(function () {
      st.inflight = null;
      if (!st.pending) {
        st.pending = payload;
      }
      scheduleRetry(slot, "network");
    });
  }

  function queue(row, fields, optimisticKind, url, slot) {
    var sid = row.getAttribute("data-student");
    slot = slot || sid;
    var st = state(slot, sid);
    st.pending = {
      url: url || row.getAttribute("data-url"),
      fields: fields,
      key: newKey(),
      version: fields.__version !== undefined ? fields.__version : null,
      optimistic: optimisticKind
    };
    delete fields.__version;
    if (optimisticKind) {
      showKind(row, optimisticKind);
    }
    clearRowMessage(row);
    row.classList.remove("is-failed");
    if (st.timer) {
      clearTimeout(st.timer);
      st.timer = null;
    }
    send(slot);
  }

  function detailOf(row) {
    var input = row.querySelector('[data-field="detail"]');
    return input ? input.value : "";
  }

  function saveKind(row, kind, extra) {
    var fields = { kind: kind };
    if (PANEL_KINDS[kind]) {
      fields.detail = detailOf(row);
    }
    Object.keys(extra || {}).forEach(function (k) { fields[k] = extra[k]; });
    closePanel(row, false);
    queue(row, fields, kind);
  }

  /* ---------------------------------------------------------------- */
  /* Panels (欠席の理由・出席停止・忌引)                                   */
  /* ---------------------------------------------------------------- */
  function showCloseButton(row) {
    var close = row.querySelector("[data-panel-close]");
    if (close) {
      close.hidden = false;
    }
  }

  function openPanel(row, kind) {
    var panel = row.querySelector("[data-panel]");
    if (!panel) {
      return;
    }
    panel.hidden = false;
    Array.prototype.forEach.call(panel.querySelectorAll("[data-panel-kind]"), function (set) {
      var on = set.getAttribute("data-panel-kind") === kind;
      set.hidden = !on;
      set.disabled = !on;
    });
    showCloseButton(row);
    row.classList.add("has-panel");
    var first = panel.querySelector('[data-panel-kind="' + kind + '"] [aria-pressed="true"]') ||
      panel.querySelector('[data-panel-kind="' + kind + '"] button, [data-panel-kind="' + kind + '"] select');
    if (first) {
      first.focus();
    }
  }

  function closePanel(row, focusRow) {
    var panel = row.querySelector("[data-panel]");
    if (!panel || panel.hidden) {
      return;
    }
    panel.hidden = true;
    row.classList.remove("has-panel");
    if (focusRow) {
      var pressed = row.querySelector('.entry-row__marks [tabindex="0"]');
      if (pressed) {
        pressed.focus();
      }
    }
  }

  /* ---------------------------------------------------------------- */
  /* Buttons                                                           */
  /* ---------------------------------------------------------------- */
  function pressMain(row, buttonKind) {
    var current = row.getAttribute("data-kind") || "present";
    var target = toggleTarget(current, buttonKind);
    if (PANEL_KINDS[target]) {
      openPanel(row, target);
      return;
    }
    saveKind(row, target);
  }

  function pressPanelButton(row, button) {
    var kind = button.getAttribute("data-kind");
    if (kind === "absent") {
      saveKind(row, "absent", { absence_reason: button.getAttribute("data-value") });
    } else if (kind === "mourning") {
      saveKind(row, "mourning", { kinship_degree: button.getAttribute("data-value") });
    } else if (kind === "suspension") {
      var fieldset = button.closest("[data-panel-kind]");
      var suspension = fieldset.querySelector('[data-field="suspension_kind"]').value;
      var disease = fieldset.querySelector('[data-field="disease"]').value;
      saveKind(row, "suspension", { suspension_kind: suspension, disease: suspension === "infectious" ? disease : "" });
    }
  }

  function pressPeriod(row, button) {
    var value = (button.value || "").split("|");
    var period = button.getAttribute("data-period");
    var base = row.getAttribute("data-period-url") || "";
    var url = base.replace(/\/0\/$/, "/" + period + "/");
    var absentNow = button.getAttribute("aria-pressed") === "true";
    button.setAttribute("aria-pressed", absentNow ? "false" : "true");
    queue(row, { kind: value[2], __version: button.getAttribute("data-version") || "0" }, null, url,
      row.getAttribute("data-student") + ":" + period);
  }

  // The confirm button sits in the bar above the list and belongs to the form by its form attribute.
  doc.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button") : null;
    if (!button || (!form.contains(button) && button.form !== form)) {
      return;
    }
    var row = rowOf(button);
    if (button.hasAttribute("data-panel-close")) {
      event.preventDefault();
      closePanel(row, true);
      return;
    }
    if (button.hasAttribute("data-row-retry")) {
      return;
    }
    if (button.name === "confirm") {
      event.preventDefault();
      confirmRegister(button);
      return;
    }
    if (!row || button.disabled) {
      return;
    }
    if (button.name === "period") {
      event.preventDefault();
      pressPeriod(row, button);
      return;
    }
    if (button.name !== "set") {
      return;
    }
    event.preventDefault();
    if (button.closest(".entry-row__marks")) {
      pressMain(row, button.getAttribute("data-kind"));
    } else {
      pressPanelButton(row, button);
    }
  });

  // A change of the 出席停止 事由 shows whether a disease is needed; Enter in the note saves the open panel.
  form.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || !event.target.matches || !event.target.matches('[data-field="detail"]')) {
      return;
    }
    event.preventDefault();
    var row = rowOf(event.target);
    var open = row && row.querySelector("[data-panel-kind]:not([hidden])");
    if (!open) {
      return;
    }
    var chosen = open.querySelector('[aria-pressed="true"]') || open.querySelector("button");
    if (chosen) {
      chosen.click();
    }
  });

  /* ---------------------------------------------------------------- */
  /* Confirming the register                                           */
  /* ---------------------------------------------------------------- */
  function confirmRegister(button) {
    var status = doc.getElementById("entry-status");
    var url = status ? status.getAttribute("data-confirm-url") : "";
    var body = new FormData();
    var included = [];
    Object.keys(states).forEach(function (slot) {
      var st = states[slot];
      var sid = st.sid;
      var payload = st.pending || st.inflight;
      var row = rowById(sid);
      if (slot !== sid || !payload || !row || payload.url !== row.getAttribute("data-url")) {
        return;
      }
      included.push(sid);
      body.append("student", sid);
      ["kind", "absence_reason", "suspension_kind", "disease", "kinship_degree", "detail"].forEach(function (name) {
        body.append(name, payload.fields[name] || "");
      });
      body.append("version", row.getAttribute("data-version") || "0");
    });
    var reason = form.querySelector("[data-amendment-reason]");
    if (reason) {
      body.append("amendment_reason", reason.value);
    }
    button.disabled = true;
    fetch(url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "HX-Request": "true", "X-CSRFToken": csrfToken() }
    }).then(function (response) {
      return response.text().then(function (html) { return { response: response, html: html }; });
    }).then(function (result) {
      button.disabled = false;
      if (result.response.headers.get("X-Komu-Status") !== "1") {
        throw new Error("not a status");
      }
      if (included.length && result.response.ok) {
        // The waiting changes were saved with the confirmation: show the register as the server has it.
        included.forEach(function (sid) {
          var st = state(sid);
          if (st.timer) { clearTimeout(st.timer); }
          delete states[sid];
        });
        window.location.reload();
        return;
      }
      var holder = doc.createElement("template");
      holder.innerHTML = result.html.trim();
      var fresh = holder.content.querySelector("#entry-status");
      if (fresh && status) {
        status.parentNode.replaceChild(fresh, status);
        var next = fresh.querySelector("[data-confirm]");
        if (next) {
          next.focus();
        }
      }
    }).catch(function () {
      button.disabled = false;
      var message = status && status.querySelector(".entry-status__message");
      if (message) {
        message.textContent = text("failed");
      }
    });
  }

  /* ---------------------------------------------------------------- */
  /* Keyboard                                                          */
  /* ---------------------------------------------------------------- */
  function roving(row) {
    var buttons = row.querySelectorAll(".entry-row__marks .mark-button");
    var pressed = row.querySelector('.entry-row__marks [aria-pressed="true"]') || buttons[0];
    Array.prototype.forEach.call(buttons, function (b) {
      b.tabIndex = b === pressed ? 0 : -1;
    });
  }

  function focusRow(row) {
    if (!row) {
      return;
    }
    var target = row.querySelector('.entry-row__marks [tabindex="0"]') || row.querySelector(".entry-row__marks button");
    if (target) {
      target.focus();
    }
  }

  if (list) {
    Array.prototype.forEach.call(list.querySelectorAll(".entry-row"), roving);
    list.addEventListener("keydown", function (event) {
      if (event.altKey || event.ctrlKey || event.metaKey || event.isComposing) {
        return;
      }
      var target = event.target;
      var row = rowOf(target);
      if (!row) {
        return;
      }
      var typing = target.matches("input, select, textarea");
      var key = event.key;
      if (key === "Escape") {
        closePanel(row, true);
        event.preventDefault();
        return;
      }
      if (typing) {
        return;
      }
      if (key === "ArrowDown" || key === "ArrowUp") {
        var rows = Array.prototype.slice.call(list.querySelectorAll(".entry-row"));
        var next = rows[rows.indexOf(row) + (key === "ArrowDown" ? 1 : -1)];
        if (next) {
          event.preventDefault();
          focusRow(next);
        }
        return;
      }
      if ((key === "ArrowLeft" || key === "ArrowRight") && target.closest(".entry-row__marks")) {
        var buttons = Array.prototype.slice.call(row.querySelectorAll(".entry-row__marks .mark-button"));
        var i = buttons.indexOf(target) + (key === "ArrowRight" ? 1 : -1);
        if (buttons[i]) {
          event.preventDefault();
          buttons.forEach(function (b) { b.tabIndex = -1; });
          buttons[i].tabIndex = 0;
          buttons[i].focus();
        }
        return;
      }
      var open = row.querySelector("[data-panel-kind]:not([hidden])");
      if (open && /^[1-9]$/.test(key)) {
        var choice = open.querySelector('[aria-keyshortcuts="' + key + '"]');
        if (choice) {
          event.preventDefault();
          choice.click();
        }
        return;
      }
      var kind = SHORTCUTS[key.toLowerCase()];
      if (kind && row.querySelector(".entry-row__marks button:not([disabled])")) {
        event.preventDefault();
        pressMain(row, kind);
      }
    });
  }

  /* ---------------------------------------------------------------- */
  /* Never lose a change                                               */
  /* ---------------------------------------------------------------- */
  window.addEventListener("online", function () {
    Object.keys(states).forEach(function (slot) {
      var st = states[slot];
      if (st.pending && !st.inflight) {
        if (st.timer) {
          clearTimeout(st.timer);
          st.timer = null;
        }
        send(slot);
      }
    });
  });

  window.addEventListener("beforeunload", function (event) {
    var unsaved = Object.keys(states).some(function (slot) {
      return states[slot].pending || states[slot].inflight;
    });
    if (unsaved) {
      event.preventDefault();
      event.returnValue = text("leave");
      return text("leave");
    }
    return undefined;
  });
})();
