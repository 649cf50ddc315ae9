/* Progressive enhancement for the console (no inline scripts: the pages keep a strict CSP).
 *
 * Re-billing: rows marked data-rebilling="1" belong to approvals whose held drafts are being
 * re-billed after a fix. Poll the small status endpoint and, once an approval's re-bill is
 * done, fetch this page again and swap in its fresh content (flash messages stay).
 */
(function () {
  "use strict";

  function workspaceBase() {
    var m = window.location.pathname.match(/^\/workspaces\/(\d+)\//);
    return m ? "/workspaces/" + m[1] : null;
  }

  function rebillingIds() {
    var ids = {};
    document.querySelectorAll("[data-rebilling='1'][data-timesheet-pk]").forEach(function (el) {
      ids[el.getAttribute("data-timesheet-pk")] = true;
    });
    return Object.keys(ids);
  }

  function refreshFromServer(done) {
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var oldMain = document.getElementById("main");
        var newMain = fresh.getElementById("main");
        if (oldMain && newMain) {
          // The fresh page has no flash messages (they were shown once): keep the ones the
          // admin may not have read yet, above the refreshed content.
          var flashes = Array.prototype.slice.call(oldMain.querySelectorAll(".flash"));
          oldMain.innerHTML = newMain.innerHTML;
          var first = oldMain.firstChild;
          flashes.forEach(function (f) { oldMain.insertBefore(f, first); });
          var live = document.getElementById("rebill-status");
          if (live) { live.textContent = "Re-billing finished; the drafts below are up to date."; }
        }
        done();
      })
      .catch(done);
  }

  function poll(attempt) {
    var base = workspaceBase();
    var ids = rebillingIds();
    if (!base || ids.length === 0 || attempt > 150) { return; }
    fetch(base + "/approvals/status.json?ts=" + ids.join(","), {
      credentials: "same-origin",
      headers: { Accept: "application/json" }
    })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        if (!body) { return; }
        var finished = ids.some(function (id) {
          var state = body.approvals[id];
          return !state || !state.rebilling;
        });
        if (finished) {
          refreshFromServer(function () { setTimeout(function () { poll(attempt + 1); }, 1500); });
        } else {
          setTimeout(function () { poll(attempt + 1); }, 1500);
        }
      })
      .catch(function () { setTimeout(function () { poll(attempt + 1); }, 5000); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (rebillingIds().length) { setTimeout(function () { poll(0); }, 1000); }
  });
})();

/* Copy buttons beside one-time secrets: each [data-copy-target] button is hidden in the page
 * (without scripts the secret is plain, selectable text) and shown here, where it can copy. */
(function () {
  "use strict";

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "absolute";
      area.style.left = "-9999px";
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(area);
      if (ok) { resolve(); } else { reject(new Error("copy refused")); }
    });
  }

  function wire(button) {
    var id = button.getAttribute("data-copy-target");
    var source = document.getElementById(id);
    var status = document.querySelector("[data-copy-status='" + id + "']");
    if (!source) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      copyText(source.textContent.trim()).then(function () {
        button.textContent = "Copied";
        if (status) { status.textContent = "Copied to the clipboard."; }
      }, function () {
        // Select it instead, so Ctrl+C / Cmd+C copies it.
        var range = document.createRange();
        range.selectNodeContents(source);
        var selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        if (status) { status.textContent = "Selected: press Ctrl+C (Cmd+C on a Mac) to copy."; }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("button[data-copy-target]").forEach(wire);
  });
})();
