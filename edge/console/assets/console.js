// leadrelay console: live countdowns, and live regions refreshed from the event stream.
// Everything works without it (forms post, pages reload); it only keeps pages current.
(function () {
  "use strict";

  // A duration as the server writes it (render.go's humanDuration, public.duration_text):
  // "14 min 32 s", "1 day 6 h", so the text does not change style on the first tick.
  var units = [" day", " h", " min", " s"];
  function span(ms) {
    var s = Math.floor(Math.abs(ms) / 1000);
    var amounts = [Math.floor(s / 86400), Math.floor(s % 86400 / 3600), Math.floor(s % 3600 / 60), s % 60];
    for (var i = 0; i < amounts.length; i++) {
      if (amounts[i] > 0) {
        var said = amounts[i] + units[i] + (i === 0 && amounts[i] > 1 ? "s" : "");
        if (i < amounts.length - 1 && amounts[i + 1] > 0) said += " " + amounts[i + 1] + units[i + 1];
        return said;
      }
    }
    return "0 s";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-deadline]").forEach(function (el) {
      var left = Date.parse(el.getAttribute("data-deadline")) - now;
      var past = el.hasAttribute("data-short") ? span(left) + " ago" : "breached " + span(left) + " ago";
      el.textContent = left > 0 ? span(left) + " left" : past;
      el.classList.toggle("past", left <= 0);
    });
    document.querySelectorAll("[data-ago]").forEach(function (el) {
      el.textContent = span(now - Date.parse(el.getAttribute("data-ago"))) + " ago";
    });
  }

  // What a region shows, less what the clock changes (countdowns, "ago" times) and the
  // highlight of new rows: a refresh that changes nothing else leaves the page alone, so a
  // refresh never moves a button from under a finger for nothing.
  function normalized(root) {
    root.querySelectorAll("[data-deadline], [data-ago]").forEach(function (el) {
      el.textContent = "";
      el.classList.remove("past");
    });
    root.querySelectorAll("tr.fresh").forEach(function (el) { el.classList.remove("fresh"); });
    return root.innerHTML;
  }
  function sameContent(region, html) {
    var next = document.createElement("div");
    next.innerHTML = html;
    return normalized(next) === normalized(region.cloneNode(true));
  }

  // Forms that return to the page they are on, and follow-up times in the browser's zone.
  function prepare(root) {
    root.querySelectorAll("input.return-here").forEach(function (el) {
      el.value = location.pathname + location.search;
    });
    root.querySelectorAll("input.tz-offset").forEach(function (el) {
      el.value = String(new Date().getTimezoneOffset());
    });
    root.querySelectorAll("form[data-confirm]").forEach(function (form) {
      if (form.dataset.bound) return;
      form.dataset.bound = "1";
      form.addEventListener("submit", function (e) {
        if (!window.confirm(form.getAttribute("data-confirm"))) e.preventDefault();
      });
    });
  }

  // A region with data-fragment is fetched again when the stream says that what it
  // watches changed (data-watch: "all", or a lead's id). A region the user is typing in
  // waits until the input loses focus.
  var pending = {};
  function refresh(region) {
    var url = region.getAttribute("data-fragment");
    if (pending[url]) return;
    pending[url] = setTimeout(function () {
      var active = document.activeElement;
      if (active && region.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName) && active.value) {
        delete pending[url];
        active.addEventListener("blur", function () { refresh(region); }, { once: true });
        return;
      }
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (res) {
          if (res.status === 401) { location.href = "/admin/login?next=" + encodeURIComponent(location.pathname + location.search); return null; }
          return res.ok ? res.text() : null;
        })
        .then(function (html) {
          delete pending[url];
          if (html === null || html === undefined || sameContent(region, html)) return;
          var before = {};
          region.querySelectorAll("[data-lead]").forEach(function (el) { before[el.getAttribute("data-lead")] = true; });
          region.innerHTML = html;
          region.querySelectorAll("tr.lead-row[data-lead]").forEach(function (el) {
            if (!before[el.getAttribute("data-lead")]) el.classList.add("fresh");
          });
          prepare(region);
          tick();
        })
        .catch(function () { delete pending[url]; });
    }, 150);
  }
  function changed(ids, all) {
    document.querySelectorAll("[data-fragment]").forEach(function (region) {
      var watch = region.getAttribute("data-watch");
      if (all || watch === "all" || ids.indexOf(watch) >= 0) refresh(region);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    prepare(document);
    tick();
    setInterval(tick, 1000);
    // The banner also follows time itself (leads entering their warning window).
    setInterval(function () { changed([], false); }, 30000);
    var live = document.body.getAttribute("data-live");
    if (!live || !window.EventSource) return;
    var es = new EventSource(live);
    // The stream's state, on the body (data-stream) and, when it is not live, in words: an
    // admin must not take a page that stopped following the leads for a quiet one.
    function state(name, words) {
      document.body.setAttribute("data-stream", name);
      var note = document.getElementById("live-status");
      if (!note) return;
      note.textContent = words || "";
      note.hidden = !words;
    }
    // On every (re)connection, catch up with what changed while the stream was closed:
    // between this page's drawing and now, or while it was away.
    es.addEventListener("hello", function () {
      state("open");
      changed([], true);
    });
    es.addEventListener("paused", function (e) {
      var d = JSON.parse(e.data);
      state("paused", "Live updates paused: " + d.reason + ". This page may be out of date; it catches up by itself when they are back.");
    });
    es.addEventListener("resumed", function () {
      state("open");
      changed([], true);
    });
    es.addEventListener("lead", function (e) { var d = JSON.parse(e.data); changed([d.id], false); });
    es.addEventListener("change", function (e) { var d = JSON.parse(e.data); changed(d.ids || [], !!d.all); });
    es.onerror = function () {
      // The browser retries on its own, unless the service refused the stream (a session
      // that ended answers with the sign-in page): then nothing more will come.
      if (es.readyState === EventSource.CLOSED) {
        state("closed", "Live updates stopped: reload the page (you may need to sign in again).");
      } else {
        state("retrying", "Live updates lost: this page cannot reach the service. Reconnecting\u2026");
      }
    };
  });
})();
