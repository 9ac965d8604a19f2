// ippam's few behaviours. A file, not inline handlers: the Content-Security-Policy allows
// no inline script (onclick=, hx-on) and no eval.
(function () {
  "use strict";

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) return;
    // The cluster switcher: choosing a cluster reloads the page for it (a <noscript>
    // button does the same without JavaScript).
    if (target.matches("select[data-autosubmit]") && target.form) {
      target.form.submit();
    }
    // "Select all" checkboxes: data-select-all holds the selector of the boxes it drives.
    if (target.matches("input[type=checkbox][data-select-all]")) {
      document.querySelectorAll(target.getAttribute("data-select-all")).forEach(function (box) {
        box.checked = target.checked;
      });
    }
  });

  // A modal <dialog data-modal> that htmx swaps in (the reclaim dry run, appended to <body>):
  // show it, keep only the newest one, and remove it once it is closed.
  function openModal(dialog) {
    if (dialog.open) return;
    document.querySelectorAll("dialog[data-modal]").forEach(function (other) {
      if (other !== dialog && other.id === dialog.id) other.remove();
    });
    dialog.addEventListener("close", function () { dialog.remove(); });
    dialog.showModal();
  }

  document.addEventListener("htmx:load", function (event) {
    var elt = event.detail && event.detail.elt;
    if (!(elt instanceof Element)) return;
    if (elt.matches("dialog[data-modal]")) openModal(elt);
    elt.querySelectorAll("dialog[data-modal]").forEach(openModal);
  });
})();
