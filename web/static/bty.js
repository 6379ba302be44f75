// bty-web page behaviour: the live event stream (navbar badges, online
// indicator, progress), the per-row actions of the images page, job
// cancel buttons, the upload widget and copy-to-clipboard. Pages read fine
// without it; only the buttons and live updates need it.
(function () {
  "use strict";

  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";

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

  // A same-origin request carrying the CSRF token; resolves with the
  // response when it is 2xx, rejects with the server's message otherwise.
  function request(method, url, body) {
    var options = {
      method: method,
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRF-Token": csrf }
    };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(url, options).then(function (response) {
      if (response.ok) { return response; }
      return detailOf(response).then(function (detail) { throw new Error(detail); });
    });
  }

  function humanBytes(n) {
    var units = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if (n < 1024) { return n + " B"; }
    var value = n / 1024, unit = 0;
    while (value >= 1024 && unit + 1 < units.length) { value /= 1024; unit += 1; }
    return value.toFixed(1) + " " + units[unit];
  }

  function duration(secs) {
    secs = Math.floor(secs);
    if (secs >= 3600) { return Math.floor(secs / 3600) + "h " + String(Math.floor((secs % 3600) / 60)).padStart(2, "0") + "m"; }
    if (secs >= 60) { return Math.floor(secs / 60) + "m " + String(secs % 60).padStart(2, "0") + "s"; }
    return secs + "s";
  }

  function isActive(job) { return job.state === "queued" || job.state === "running"; }

  // ---- live events: one EventSource per page -------------------------

  var jobs = {}; // active jobs by id, for the badges
  var live = document.getElementById("bty-live");

  function setLive(online) {
    window.__btyLive = online;
    if (!live) { return; }
    live.hidden = false;
    live.dataset.state = online ? "online" : "offline";
    live.querySelector(".bty-live-label").textContent = online ? "live" : "offline";
    live.title = online ? "Live updates from btyd: connected" : "Live updates from btyd: not connected (retrying)";
  }

  function updateBadges() {
    var counts = { download: 0, hash: 0, flash: 0 };
    Object.keys(jobs).forEach(function (id) {
      var kind = jobs[id].kind === "push" || jobs[id].kind === "upload" ? "download" : jobs[id].kind;
      if (counts[kind] !== undefined) { counts[kind] += 1; }
    });
    document.querySelectorAll(".bty-nav-badge").forEach(function (badge) {
      var n = counts[badge.dataset.worker] || 0;
      badge.textContent = String(n);
      badge.hidden = n === 0;
    });
  }

  function emit(name, detail) {
    document.dispatchEvent(new CustomEvent(name, { detail: detail }));
  }

  function connect() {
    if (!window.EventSource) { return; }
    var source = new EventSource("/events/workers");
    source.onopen = function () {
      jobs = {};
      updateBadges();
      setLive(true);
      emit("bty:connected", {});
    };
    source.onerror = function () { setLive(false); }; // EventSource retries by itself
    source.addEventListener("job", function (event) {
      var job = JSON.parse(event.data);
      var previous = jobs[job.id];
      if (isActive(job)) { jobs[job.id] = job; } else { delete jobs[job.id]; }
      updateBadges();
      emit("bty:job", { job: job, previous: previous });
    });
    source.addEventListener("catalog", function (event) {
      emit("bty:catalog", JSON.parse(event.data));
    });
    source.addEventListener("disks", function (event) {
      emit("bty:disks", JSON.parse(event.data));
    });
    source.addEventListener("resync", function () {
      // Events were missed: start over with a fresh snapshot.
      source.close();
      emit("bty:resync", {});
      connect();
    });
  }

  // ---- jobs tables (downloads, hashing, flash): in-place progress,
  // re-rendered from the server when a job changes state ----------------

  var pendingRefresh = {};
  var refreshAgain = {};

  // Re-render one fragment from the server, at most one request at a time
  // per fragment; a change reported while one is on its way asks for one
  // more afterwards (the answer in flight may predate it).
  function refreshFragment(container) {
    var url = container.dataset.fragment;
    if (pendingRefresh[url]) { refreshAgain[url] = true; return; }
    var done = function () {
      delete pendingRefresh[url];
      if (refreshAgain[url]) {
        delete refreshAgain[url];
        var again = document.querySelector('[data-fragment="' + url + '"]');
        if (again) { refreshFragment(again); }
      }
    };
    pendingRefresh[url] = window.setTimeout(function () {
      fetch(url, { credentials: "same-origin" }).then(function (response) {
        return response.ok ? response.text() : null;
      }).then(function (html) {
        if (html) { replaceFragment(url, html); }
        done();
      }, done);
    }, 250);
  }

  function replaceFragment(url, html) {
    // A <template> parses any fragment, table rows included.
    var holder = document.createElement("template");
    holder.innerHTML = html.trim();
    var fresh = holder.content.firstElementChild;
    var current = document.querySelector('[data-fragment="' + url + '"]');
    if (!fresh || !current) { return; }
    // Unchanged: keep the elements (and whatever the operator is doing with
    // them) as they are.
    if (fresh.isEqualNode(current)) { return; }
    // Boxes the operator ticked stay ticked (a disk plugged in must not
    // undo a choice made on another).
    current.querySelectorAll("input[type=checkbox]:checked").forEach(function (box) {
      var same = fresh.querySelector('input[type=checkbox][name="' + CSS.escape(box.name) + '"][value="' + CSS.escape(box.value) + '"]');
      if (same && !same.disabled) { same.checked = true; }
    });
    current.replaceWith(fresh);
  }

  function setField(row, name, text) {
    row.querySelectorAll('[data-field="' + name + '"]').forEach(function (el) { el.textContent = text; });
  }

  function updateJobRow(row, job) {
    var total = job.bytes_total;
    var progress = row.querySelector('progress[data-field="progress"]');
    if (progress && total) {
      var pct = Math.min(100, Math.floor(job.bytes_done * 100 / total));
      progress.max = 100;
      progress.value = pct;
      setField(row, "percent", pct + "%");
    }
    setField(row, "bytes", total ? humanBytes(job.bytes_done) + " / " + humanBytes(total) : humanBytes(job.bytes_done));
    if (job.rate_bps > 0) {
      setField(row, "rate", humanBytes(job.rate_bps) + "/s");
      if (total && total >= job.bytes_done) { setField(row, "eta", "ETA " + duration((total - job.bytes_done) / job.rate_bps)); }
    }
    if (job.phase) { setField(row, "phase", job.phase); }
    (job.targets || []).forEach(function (target) {
      var item = row.querySelector('[data-target="' + CSS.escape(target.path) + '"]');
      if (!item) { return; }
      setField(item, "target-state", target.state);
      setField(item, "target-written", humanBytes(target.bytes_written));
    });
  }

  function onJobForTables(job, previous) {
    document.querySelectorAll("[data-fragment][data-job-kinds]").forEach(function (container) {
      if (container.dataset.jobKinds.split(" ").indexOf(job.kind) < 0) { return; }
      var row = container.querySelector('tr[data-job-id="' + CSS.escape(job.id) + '"]');
      var targetsChanged = row && (job.targets || []).some(function (t) {
        var item = row.querySelector('[data-target="' + CSS.escape(t.path) + '"] [data-field="target-state"]');
        return !item || item.textContent !== t.state;
      });
      if (row && previous && previous.state === job.state && !targetsChanged) {
        updateJobRow(row, job);
      } else {
        refreshFragment(container);
      }
    });
  }

  // ---- images page: busy labels and row refreshes ------------------------

  var rowJobs = {}; // job id -> row id, for jobs this page started

  function rowById(id) {
    return document.querySelector('tr[data-row-id="' + CSS.escape(id) + '"]');
  }

  function rowForJob(job) {
    if (rowJobs[job.id]) {
      var row = rowById(rowJobs[job.id]);
      if (row) { return row; }
    }
    var found = null;
    document.querySelectorAll("tr[data-names]").forEach(function (candidate) {
      if (!found && candidate.dataset.names.split("\n").indexOf(job.subject) >= 0) { found = candidate; }
    });
    return found;
  }

  function setLabel(button, text) {
    var label = button && button.querySelector(".bty-btn-label");
    if (label) { label.textContent = text; }
  }

  function setBusy(row, job) {
    var buttons = row.querySelectorAll(".bty-btn-group button");
    if (!row.dataset.busy) {
      var update = row.querySelector(".bty-update-btn");
      row.dataset.busyUpdate = update && !update.disabled ? "1" : "";
      buttons.forEach(function (b) { b.dataset.wasDisabled = b.disabled ? "1" : ""; });
    }
    row.dataset.busy = job.id;
    buttons.forEach(function (b) { b.disabled = true; });
    // Trying again: the old failure no longer describes the row.
    var mark = row.querySelector(".bty-row-failure");
    if (mark) { mark.hidden = true; }
    row.classList.remove("bty-failed");
    var pct = job.bytes_total ? " " + Math.floor(job.bytes_done * 100 / job.bytes_total) + "%" : "";
    if (row.dataset.busyUpdate) {
      setLabel(row.querySelector(".bty-update-btn"), "Updating" + pct);
    } else {
      setLabel(row.querySelector(".bty-fetch-btn"), "Downloading" + pct);
    }
  }

  // Re-render one row from the server; its id may change (ref -> sha256).
  // `mayVanish`: the row may be gone for good (removed file or entry).
  function refreshRow(row, mayVanish) {
    var id = row.dataset.rowId;
    var url = "/ui/images/row/" + encodeURIComponent(id) + "?q=" + encodeURIComponent(row.dataset.rowName || "");
    return fetch(url, { credentials: "same-origin" }).then(function (response) {
      if (response.status === 404 && mayVanish) { row.remove(); return null; }
      return response.ok ? response.text() : null;
    }).then(function (html) {
      if (!html) { return; }
      var body = document.createElement("tbody");
      body.innerHTML = html.trim();
      var fresh = body.querySelector("tr");
      var current = rowById(id) || row;
      if (fresh && current.parentNode) {
        Object.keys(rowJobs).forEach(function (jobId) {
          if (rowJobs[jobId] === id) { rowJobs[jobId] = fresh.dataset.rowId; }
        });
        current.replaceWith(fresh);
      }
    });
  }

  // A running hash shows under the row's sha with its progress; the row is
  // re-rendered when the job ends (below), which removes the note.
  function showHashing(row, job) {
    var note = row.querySelector(".bty-hash-progress");
    if (!note) {
      note = document.createElement("div");
      note.className = "bty-muted bty-small bty-hash-progress";
      row.children[1].appendChild(note);
    }
    var pct = job.bytes_total ? " " + Math.floor(job.bytes_done * 100 / job.bytes_total) + "%" : "";
    note.textContent = (job.state === "queued" ? "hash queued" : "hashing" + pct) + "\u2026";
  }

  function onJobForImages(job) {
    if (!document.querySelector("table.bty-images")) { return; }
    var row = rowForJob(job);
    if (!row) { return; }
    if ((job.kind === "download" || job.kind === "push") && isActive(job)) {
      setBusy(row, job);
      return;
    }
    if (job.kind === "hash" && isActive(job)) {
      showHashing(row, job);
      return;
    }
    if (!isActive(job)) {
      delete rowJobs[job.id];
      if (job.state === "failed" && job.error) { showError(failureMessage(job)); }
      // The catalog may learn of the new bytes just after the job ends;
      // a failed job's row comes back marked, with its Retry.
      refreshRow(row).then(function () {
        window.setTimeout(function () {
          var again = rowById(row.dataset.rowId) || rowForJob(job);
          if (again) { refreshRow(again); }
        }, 1200);
      });
    }
  }

  // "name: error", saying the URL once: the HTTP client's own
  // " for url (...)" repeats the one the error already names.
  function failureMessage(job) {
    var error = job.error.replace(/ for url \([^)]*\)/g, "");
    return error.indexOf(job.subject + ":") === 0 ? error : job.subject + ": " + error;
  }

  // Catalog changes that add or remove rows; others only change a row.
  var rowSetChanges = ["image.appeared", "image.removed", "entry.added", "entry.deleted", "catalog.imported", "image.uploaded"];

  function onCatalogForImages(change) {
    if (!document.querySelector("table.bty-images")) { return; }
    var matched = false;
    document.querySelectorAll("tr[data-names]").forEach(function (row) {
      if (row.dataset.names.split("\n").indexOf(change.subject) >= 0) {
        matched = true;
        refreshRow(row, change.kind === "image.removed" || change.kind === "entry.deleted");
      }
    });
    if (!matched && rowSetChanges.indexOf(change.kind) >= 0) {
      var stale = document.getElementById("bty-stale");
      if (stale) { stale.hidden = false; }
    }
  }

  // Without the live stream, follow a started job by polling.
  function followWithoutStream(jobId, row) {
    if (window.__btyLive) { return; }
    var timer = window.setInterval(function () {
      if (window.__btyLive) { window.clearInterval(timer); return; }
      fetch("/catalog/downloads", { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (list) {
        var job = (list.downloads || []).filter(function (j) { return j.id === jobId; })[0];
        if (!job || !isActive(job)) { window.clearInterval(timer); refreshRow(rowById(rowJobs[jobId]) || row); }
        else { setBusy(rowById(rowJobs[jobId]) || row, job); }
      });
    }, 2000);
  }

  function startDownload(button, update) {
    var row = button.closest("tr");
    button.disabled = true;
    request("POST", "/catalog/downloads", { id: button.dataset.id, update: update }).then(function (response) {
      return response.json();
    }).then(function (job) {
      if (!row) { showStarted(button, job); return; }
      rowJobs[job.id] = row.dataset.rowId;
      if (isActive(job)) { setBusy(row, job); followWithoutStream(job.id, row); } else { refreshRow(row); }
    }).catch(function (error) {
      button.disabled = false;
      showError(error.message);
    });
  }

  // Outside the images table (the "added" banner): say where to look.
  function showStarted(button, job) {
    setLabel(button, "Queued");
    var note = document.createElement("span");
    note.className = "bty-muted bty-small";
    note.textContent = " download " + job.state + " — progress below";
    button.after(note);
  }

  // ---- clipboard ----------------------------------------------------------

  // Plain-http pages (and unfocused or permission-less ones) have no working
  // Clipboard API: fall back to a hidden textarea and execCommand.
  function copyWithTextarea(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "bty-offscreen";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function copyText(text) {
    var copied = function () { window.__btyLastCopied = text; };
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () { return copyWithTextarea(text); }).then(copied);
    }
    return copyWithTextarea(text).then(copied);
  }

  function onShaCopy(button) {
    copyText(button.getAttribute("data-sha")).then(function () {
      button.classList.add("copied");
      window.setTimeout(function () { button.classList.remove("copied"); }, 1200);
    }, function () {
      showError("could not copy; the full sha256 is in the button's tooltip");
    });
  }

  // ---- buttons --------------------------------------------------------------

  function thenRefresh(button, promise) {
    button.disabled = true;
    promise.then(function () {
      var row = button.closest("tr[data-row-id]");
      if (row) { refreshRow(row); return; }
      var container = button.closest("[data-fragment]");
      if (container) { refreshFragment(container); } else { window.location.reload(); }
    }).catch(function (error) {
      button.disabled = false;
      showError(error.message);
    });
  }

  var actions = {
    "bty-fetch-btn": function (button) { startDownload(button, false); },
    // A failed row's Retry: the same request its Fetch (or Update) made.
    "bty-retry-btn": function (button) { startDownload(button, button.dataset.update === "1"); },
    "bty-update-btn": function (button) {
      if (!window.confirm("Re-pull this image from its source? The cached copy stays usable until the new one is verified.")) { return; }
      startDownload(button, true);
    },
    "bty-cache-delete-btn": function (button) {
      if (!window.confirm("Delete the local copy of this image? The catalog entry stays.")) { return; }
      thenRefresh(button, request("DELETE", "/catalog/cache/" + encodeURIComponent(button.dataset.id)));
    },
    "bty-catalog-entry-delete-btn": function (button) {
      var src = button.dataset.src;
      if (!window.confirm("Remove the catalog entry " + src + " and its cached copy?")) { return; }
      var row = button.closest("tr");
      button.disabled = true;
      request("DELETE", "/catalog/entries?src=" + encodeURIComponent(src)).then(function () {
        // A local file of the same content keeps the row; otherwise it goes.
        return fetch("/ui/images/row/" + encodeURIComponent(row.dataset.rowId), { credentials: "same-origin" });
      }).then(function (response) {
        if (response.status === 404) { row.remove(); } else { refreshRow(row); }
      }).catch(function (error) {
        button.disabled = false;
        showError(error.message);
      });
    },
    "bty-hash-cancel-btn": function (button) {
      thenRefresh(button, request("DELETE", "/catalog/hashes/" + encodeURIComponent(button.dataset.name)));
    },
    "bty-job-cancel-btn": function (button) {
      thenRefresh(button, request("DELETE", "/api/jobs/" + encodeURIComponent(button.dataset.jobId)));
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

  // ---- upload widget (downloads page) ----------------------------------

  function setupUpload() {
    var input = document.getElementById("upload-file");
    var button = document.getElementById("upload-btn");
    var bar = document.getElementById("upload-progress");
    var status = document.getElementById("upload-status");
    if (!input || !button) { return; }
    status.textContent = "Pick a file; it is hashed while it uploads.";
    input.addEventListener("change", function () { button.disabled = !input.files.length; });
    button.addEventListener("click", function () {
      var file = input.files[0];
      if (!file) { return; }
      var xhr = new XMLHttpRequest();
      xhr.open("PUT", "/images/" + encodeURIComponent(file.name));
      xhr.withCredentials = true;
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.setRequestHeader("X-CSRF-Token", csrf);
      bar.hidden = false;
      bar.value = 0;
      button.disabled = true;
      status.textContent = "Uploading " + file.name + " (" + humanBytes(file.size) + ")…";
      xhr.upload.onprogress = function (event) {
        if (event.lengthComputable) {
          bar.value = Math.floor(event.loaded * 100 / event.total);
          status.textContent = "Uploading " + file.name + ": " + humanBytes(event.loaded) + " of " + humanBytes(event.total);
        }
      };
      xhr.onload = function () {
        button.disabled = false;
        if (xhr.status >= 200 && xhr.status < 300) {
          var result = JSON.parse(xhr.responseText);
          window.__btyLastUpload = result;
          bar.value = 100;
          status.textContent = "Uploaded " + result.name + " (" + humanBytes(result.size_bytes) + "), sha256 " + result.sha256 + ".";
          status.dataset.sha256 = result.sha256;
        } else {
          var detail = xhr.responseText;
          try { detail = JSON.parse(xhr.responseText).detail; } catch (e) { /* keep the text */ }
          status.textContent = "Upload failed: HTTP " + xhr.status + " " + detail;
        }
      };
      xhr.onerror = function () {
        button.disabled = false;
        status.textContent = "Upload failed: network error (too large, or the server went away).";
      };
      xhr.send(file);
    });
  }

  // The activity cards follow the event log: a job that changed state, a
  // catalog change or a disk event re-renders them (coalesced per card).
  function refreshActivity() {
    document.querySelectorAll("[data-fragment][data-activity]").forEach(refreshFragment);
  }

  document.addEventListener("bty:job", function (event) {
    var job = event.detail.job, previous = event.detail.previous;
    onJobForTables(job, previous);
    onJobForImages(job);
    if (!previous || previous.state !== job.state) { refreshActivity(); }
  });
  document.addEventListener("bty:catalog", function (event) {
    onCatalogForImages(event.detail);
    refreshActivity();
  });
  // Disks plugged in, pulled or changed: the flash page's rows follow.
  document.addEventListener("bty:disks", function () {
    document.querySelectorAll("[data-fragment][data-disks]").forEach(refreshFragment);
    refreshActivity();
  });
  document.addEventListener("bty:connected", function () {
    document.querySelectorAll("[data-fragment][data-job-kinds], [data-fragment][data-disks], [data-fragment][data-activity]").forEach(refreshFragment);
  });

  setupUpload();
  setLive(false);
  connect();
})();
