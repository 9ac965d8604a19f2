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
  // show it, keep only the newest one, and remove it once it is closed. Focus goes to the
  // dialog itself (its title is read out; a destructive button is not pre-focused) and,
  // when it closes (Escape or its Close button), back to the control that opened it.
  function openModal(dialog) {
    if (dialog.open) return;
    var opener = document.activeElement;
    document.querySelectorAll("dialog[data-modal]").forEach(function (other) {
      if (other !== dialog && other.id === dialog.id) other.remove();
    });
    dialog.addEventListener("close", function () {
      dialog.remove();
      if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
    });
    dialog.showModal();
    dialog.setAttribute("tabindex", "-1");
    dialog.focus();
  }

  // htmx swaps keep the keyboard where it was. htmx itself restores focus to an element
  // with an id; a sort header or pager link (data-focus-key) or a heat-map block (its
  // data-block) is found again by that key, and otherwise the swapped region itself takes
  // focus, so focus never falls back to the top of the page.
  var pendingFocus = null;
  function focusKey(elt) {
    return elt.getAttribute("data-focus-key") || elt.getAttribute("data-block");
  }
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail && event.detail.target;
    var active = document.activeElement;
    pendingFocus = null;
    if (!(target instanceof Element) || !target.id || !(active instanceof HTMLElement)) return;
    if (active === document.body || !target.contains(active)) return;
    // The reclaim dry run's body is replaced by its progress (another id): the element
    // found at the same place takes its role.
    var parent = target.parentElement;
    var index = parent ? Array.prototype.indexOf.call(parent.children, target) : -1;
    pendingFocus = { region: target.id, parent: parent, index: index, id: active.id, key: focusKey(active) };
  });

  // What a swap changed, said in the page's aria-live region (base.html): a region that is
  // itself live (the acknowledgement result, the reclaim progress, the NAD preview) speaks
  // for itself; a table says how many rows it now shows.
  function announce(region) {
    var live = document.getElementById("live-region");
    if (!live || region.closest("[aria-live]")) return;
    var message = "";
    var said = region.querySelector("[data-announce]");
    if (said) {
      message = said.getAttribute("data-announce") || said.textContent;
    } else if (region.querySelector("table")) {
      var pager = region.querySelector(".pager");
      var rows = region.querySelectorAll("tbody tr").length;
      message = pager ? pager.textContent : rows + (rows === 1 ? " row" : " rows") + " shown";
    } else if (region.querySelector(".empty")) {
      message = region.querySelector(".empty").textContent;
    }
    message = message.replace(/\s+/g, " ").trim();
    if (!message) return;
    // Emptied first, so the same words twice in a row are still announced.
    live.textContent = "";
    window.setTimeout(function () { live.textContent = message; }, 50);
  }

  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail && event.detail.target;
    var wanted = pendingFocus;
    pendingFocus = null;
    var region = target instanceof Element && target.id ? document.getElementById(target.id) : null;
    var same = !!(wanted && region && wanted.region === region.id);
    if (wanted && !same && wanted.parent) {
      var inPlace = wanted.parent.children[wanted.index] || null;
      if (inPlace && (!region || inPlace === region)) {
        region = inPlace;
        same = true;
      }
    }
    if (!region) return;
    if (same && wanted) {
      var active = document.activeElement;
      if (!(active instanceof HTMLElement) || active === document.body || !active.isConnected) {
        var again = (wanted.id && document.getElementById(wanted.id)) || null;
        if (!again && wanted.key) {
          region.querySelectorAll("[data-focus-key], [data-block]").forEach(function (elt) {
            if (!again && focusKey(elt) === wanted.key) again = elt;
          });
        }
        if (!again) {
          if (!region.hasAttribute("tabindex")) region.setAttribute("tabindex", "-1");
          again = region;
        }
        again.focus();
      }
    }
    // Only what the user asked for is said: not a region that loads itself after the page.
    var config = event.detail.requestConfig;
    var trigger = config && config.elt;
    var fromUser = same ||
      (trigger instanceof Element && trigger.isConnected && trigger.contains(document.activeElement));
    if (fromUser) announce(region);
  });

  document.addEventListener("htmx:load", function (event) {
    var elt = event.detail && event.detail.elt;
    if (!(elt instanceof Element)) return;
    if (elt.matches("dialog[data-modal]")) openModal(elt);
    elt.querySelectorAll("dialog[data-modal]").forEach(openModal);
  });
})();
