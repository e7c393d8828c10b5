/* 学級編制 (students/placement.html): drag a pupil onto a class to place them there.
 *
 * Progressive enhancement only: dragging ticks that one pupil, chooses the class in the bulk form's select and
 * submits the same form a keyboard user submits with "この学級に入れる" — one code path on the server. Without
 * JavaScript (or without a mouse) the checkboxes and the select do everything.
 */
(function () {
  "use strict";

  function init() {
    var form = document.querySelector("[data-placement-form]");
    if (!form) {
      return;
    }
    var select = form.querySelector('select[name="homeroom_class"]');
    var status = form.querySelector("[data-placement-status]");
    if (!select) {
      return;
    }
    var dragged = null;

    form.querySelectorAll("[data-student]").forEach(function (row) {
      row.setAttribute("draggable", "true");
      row.addEventListener("dragstart", function (event) {
        dragged = row;
        event.dataTransfer.effectAllowed = "move";
        event.dataTransfer.setData("text/plain", row.getAttribute("data-student"));
      });
      row.addEventListener("dragend", function () {
        dragged = null;
      });
    });

    form.querySelectorAll("[data-drop-class]").forEach(function (target) {
      target.addEventListener("dragover", function (event) {
        if (dragged) {
          event.preventDefault();
          event.dataTransfer.dropEffect = "move";
          target.classList.add("is-drop-target");
        }
      });
      target.addEventListener("dragleave", function () {
        target.classList.remove("is-drop-target");
      });
      target.addEventListener("drop", function (event) {
        event.preventDefault();
        target.classList.remove("is-drop-target");
        var studentId = event.dataTransfer.getData("text/plain");
        var classId = target.getAttribute("data-drop-class");
        if (!studentId || !classId) {
          return;
        }
        // Exactly the dragged pupil: untick everything else so a drop never moves more than was dragged.
        form.querySelectorAll('input[name="student"]').forEach(function (box) {
          box.checked = box.value === studentId;
        });
        select.value = classId;
        if (status) {
          var name = dragged ? dragged.getAttribute("data-name") : "";
          status.textContent = name + " → " + target.getAttribute("data-class-label");
        }
        if (typeof form.requestSubmit === "function") {
          form.requestSubmit();
        } else {
          form.submit();
        }
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
