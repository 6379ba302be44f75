// bty-web page behaviour: copy-to-clipboard for sha256 buttons and the
// per-row actions of the images and hashing pages. Pages read fine without
// it; only the buttons need it.
(function () {
  "use strict";

  function showError(message) {
    var box = document.getElementById("bty-js-error");
    if (!box) { window.alert(message); return; }
    box.textContent = message; // textContent: messages are never HTML
    box.hidden = false;
    box.scrollIntoView({ block: "nearest" });
  }

  // The JSON {"detail": ...} of a failed response, else its status line.
  function detailOf(response) {
    return response.text().then(function (text) {
      try {
        var body = JSON.parse(text);
        if (body && typeof body.detail === "string") { return body.detail; }
      } catch (e) { /* not JSON: fall through */ }
      return "request failed: HTTP " + response.status + (text ? " — " + text : "");
    });
  }

  function call(method, url, body, button) {
    var options = { method: method, headers: { "Accept": "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    if (button) { button.disabled = true; }
    return fetch(url, options).then(function (response) {
      if (response.ok) { window.location.reload(); return; }
      return detailOf(response).then(function (detail) {
        if (button) { button.disabled = false; }
        showError(detail);
      });
    }, function (error) {
      if (button) { button.disabled = false; }
      showError("request failed: " + error);
    });
  }

  // Plain-http pages (and unfocused or permission-less ones) have no working
  // Clipboard API: fall back to a hidden textarea and execCommand.
  function copyWithTextarea(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () { return copyWithTextarea(text); });
    }
    return copyWithTextarea(text);
  }

  function onShaCopy(button) {
    copyText(button.getAttribute("data-sha")).then(function () {
      button.classList.add("copied");
      window.setTimeout(function () { button.classList.remove("copied"); }, 1200);
    }, function () {
      showError("could not copy; the full sha256 is in the button's tooltip");
    });
  }

  var actions = {
    "bty-fetch-btn": function (button) {
      call("POST", "/catalog/downloads", { id: button.dataset.id }, button);
    },
    "bty-update-btn": function (button) {
      if (!window.confirm("Re-pull this image from its source? The cached copy stays usable until the new one is verified.")) { return; }
      call("POST", "/catalog/downloads", { id: button.dataset.id, update: true }, button);
    },
    "bty-cache-delete-btn": function (button) {
      if (!window.confirm("Delete the local copy of this image? The catalog entry stays.")) { return; }
      call("DELETE", "/catalog/cache/" + encodeURIComponent(button.dataset.id), undefined, button);
    },
    "bty-catalog-entry-delete-btn": function (button) {
      var src = button.dataset.src;
      if (!window.confirm("Remove the catalog entry " + src + " and its cached copy?")) { return; }
      call("DELETE", "/catalog/entries?src=" + encodeURIComponent(src), undefined, button);
    },
    "bty-hash-cancel-btn": function (button) {
      call("DELETE", "/catalog/hashes/" + encodeURIComponent(button.dataset.name), undefined, button);
    }
  };

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button");
    if (!button || button.disabled) { return; }
    if (button.classList.contains("bty-sha-copy")) { onShaCopy(button); return; }
    Object.keys(actions).forEach(function (cls) {
      if (button.classList.contains(cls)) { actions[cls](button); }
    });
  });
})();
