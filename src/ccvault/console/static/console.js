// ccvault console: the little the pages need beyond HTML (no inline script: the CSP
// allows only this file and the vendored htmx).
(function () {
  "use strict";
  // Compact in tables: the year only when it is not this one.
  var thisYear = new Intl.DateTimeFormat(undefined, {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short"
  });
  var otherYear = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", timeZoneName: "short"
  });
  var fmt = { format: function (when) {
    return (when.getFullYear() === new Date().getFullYear() ? thisYear : otherYear).format(when);
  } };

  // Timestamps arrive in UTC; show them in the viewer's time zone (title keeps UTC).
  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (!isNaN(when)) { el.textContent = fmt.format(when); }
    });
  }

  // Erase: the button stays disabled until the customer id is typed exactly.
  function eraseGuard(root) {
    root.querySelectorAll("form.erase[data-confirm]").forEach(function (form) {
      var input = form.querySelector("input[name=confirm]");
      var button = form.querySelector("button[type=submit]");
      var check = function () { button.disabled = input.value !== form.dataset.confirm; };
      input.addEventListener("input", check);
      check();
    });
  }

  // Review queue: j/k move between items, a/r approve or reject the current one.
  var current = 0;
  function items() { return Array.prototype.slice.call(document.querySelectorAll(".review-item")); }
  function select(i) {
    var all = items();
    if (!all.length) { return; }
    current = Math.max(0, Math.min(i, all.length - 1));
    all.forEach(function (el, n) { el.classList.toggle("current", n === current); });
    all[current].focus();
  }
  function decide(decision) {
    var all = items();
    if (!all.length) { return; }
    var button = all[Math.min(current, all.length - 1)].querySelector('button[data-decision="' + decision + '"]');
    if (button) { button.click(); }
  }
  document.addEventListener("keydown", function (ev) {
    if (!document.getElementById("queue")) { return; }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
    var tag = (ev.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select") { return; }
    var all = items();
    var at = all.indexOf(ev.target.closest ? ev.target.closest(".review-item") : null);
    if (at >= 0) { current = at; }
    if (ev.key === "j") { select(current + 1); ev.preventDefault(); }
    else if (ev.key === "k") { select(current - 1); ev.preventDefault(); }
    else if (ev.key === "a") { decide("approve"); ev.preventDefault(); }
    else if (ev.key === "r") { decide("reject"); ev.preventDefault(); }
  });
  document.addEventListener("focusin", function (ev) {
    var item = ev.target.closest && ev.target.closest(".review-item");
    if (item) {
      current = items().indexOf(item);
      items().forEach(function (el, n) { el.classList.toggle("current", n === current); });
    }
  });
  // After a decision replaced an item, the next one becomes current.
  document.addEventListener("htmx:afterSettle", function () {
    if (document.getElementById("queue") && items().length) { select(current); }
  });

  function init(root) { localTimes(root); eraseGuard(root); }
  document.addEventListener("DOMContentLoaded", function () {
    init(document);
    if (document.getElementById("queue")) { select(0); }
  });
  document.addEventListener("htmx:load", function (ev) { localTimes(ev.target); });
})();
