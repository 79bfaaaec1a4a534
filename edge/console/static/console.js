// edge console: the little every page shares. A form with data-confirm asks before it is sent
// (deleting a user or a face); a button with data-busy is disabled while its form is sent.
"use strict";
document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
    return;
  }
  var busy = form.querySelector("[data-busy]");
  if (busy) {
    busy.disabled = true;
    busy.textContent = busy.getAttribute("data-busy");
  }
});
// A <select data-autosubmit> sends its form when changed (no inline handlers: the CSP forbids them).
document.addEventListener("change", function (event) {
  if (event.target.hasAttribute && event.target.hasAttribute("data-autosubmit")) {
    event.target.form.submit();
  }
});
