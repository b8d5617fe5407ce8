// The job page's live progress: poll the job's state once a second until it ends.
(function () {
  "use strict";
  var section = document.getElementById("job");
  if (!section) { return; }
  var ended = ["succeeded", "failed", "cancelled"];
  var id = section.dataset.job;
  function text(id, value) { var e = document.getElementById(id); if (e) { e.textContent = value; } }
  function seconds(s) { return s < 60 ? s.toFixed(1) + " s" : Math.floor(s / 60) + " min " + String(Math.round(s % 60)).padStart(2, "0") + " s"; }
  function show(job) {
    var state = document.getElementById("job-state");
    state.textContent = job.state;
    state.className = "state-" + job.state;
    section.dataset.state = job.state;
    var p = job.progress || {};
    var bar = document.getElementById("job-progress");
    bar.max = p.total || 1;
    bar.value = p.done || 0;
    var stage = p.stage ? p.stage + " " + (p.done || 0).toLocaleString() + " / " + (p.total || 0).toLocaleString() : "";
    if (p.eta !== undefined && p.eta !== null && ended.indexOf(job.state) < 0) { stage += ", about " + seconds(p.eta) + " left"; }
    text("job-stage", stage);
    text("job-finished", job.finished_at || "–");
    text("job-timings", Object.keys(job.timings || {}).map(function (k) { return k + " " + seconds(job.timings[k]); }).join(", "));
    var error = document.getElementById("job-error");
    if (job.error) { error.hidden = false; error.textContent = job.error.code + ": " + job.error.message; }
    if (ended.indexOf(job.state) >= 0) {
      var cancel = document.getElementById("cancel");
      if (cancel) { cancel.hidden = true; }
      if (job.state === "succeeded") { window.location.reload(); }
      return true;
    }
    return false;
  }
  function poll() {
    fetch("/console/jobs/" + encodeURIComponent(id) + "/state", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) { text("job-stage", "Log in again to follow this job."); return "stop"; }
        return r.ok ? r.json() : null;
      })
      .then(function (job) {
        if (job === "stop") { return; }
        if (!job || !show(job)) { window.setTimeout(poll, 1000); }
      })
      .catch(function () { window.setTimeout(poll, 2000); });
  }
  if (ended.indexOf(section.dataset.state) < 0) { window.setTimeout(poll, 500); }
})();
