// Tidemark web UI: live updates (paused while the tab is hidden), relative
// times, keyboard shortcuts, the theme switch, and filter forms that keep
// the URL the source of truth. Every page works without it.
(function () {
  "use strict";
  var doc = document;
  var root = doc.documentElement;
  var THEME_KEY = "tidemark-theme";

  // ---- Theme: system -> light -> dark -> system ----
  function theme() { return root.getAttribute("data-theme") || "system"; }
  function showTheme() {
    var b = doc.getElementById("theme");
    if (!b) return;
    var t = theme();
    b.querySelector(".theme-label").textContent = "Theme: " + t;
    b.setAttribute("aria-label", "Colour theme: " + t + ". Select to change.");
  }
  function setTheme(t) {
    try {
      if (t === "system") localStorage.removeItem(THEME_KEY); else localStorage.setItem(THEME_KEY, t);
    } catch (e) { /* storage disabled: the choice lasts for this page */ }
    if (t === "system") root.removeAttribute("data-theme"); else root.setAttribute("data-theme", t);
    showTheme();
  }

  // ---- Relative times, absolute (local) on hover ----
  function ago(ms) {
    var future = ms < 0, s = Math.round(Math.abs(ms) / 1000);
    if (!future && s < 45) return "just now";
    var units = [[86400, "d"], [3600, "h"], [60, "min"], [1, "s"]], parts = [];
    for (var i = 0; i < units.length && parts.length < 2; i++) {
      var n = Math.floor(s / units[i][0]);
      if (n > 0) { parts.push(n + " " + units[i][1]); s -= n * units[i][0]; } else if (parts.length) break;
    }
    var text = parts.join(" ") || "0 s";
    return future ? "in " + text : text + " ago";
  }
  function updateTimes() {
    var els = doc.querySelectorAll("time[datetime]");
    for (var i = 0; i < els.length; i++) {
      var el = els[i], t = Date.parse(el.getAttribute("datetime"));
      if (isNaN(t)) continue;
      el.textContent = ago(Date.now() - t);
      if (!el.hasAttribute("data-local")) {
        el.setAttribute("data-local", "");
        el.title = new Date(t).toLocaleString() + " your time · " + el.title;
      }
    }
  }

  // ---- Live updates ----
  var main = doc.getElementById("main");
  var every = main ? parseInt(main.getAttribute("data-refresh") || "0", 10) : 0;
  var paused = false, busy = false, last = Date.now();
  function liveRegion() { return doc.getElementById("live"); }
  function showPaused() {
    var bars = doc.querySelectorAll(".livebar");
    for (var i = 0; i < bars.length; i++) {
      bars[i].classList.toggle("paused", paused);
      var b = bars[i].querySelector(".live-toggle");
      if (b) { b.textContent = paused ? "Resume" : "Pause"; b.setAttribute("aria-pressed", paused ? "true" : "false"); }
      var t = bars[i].querySelector(".live-text");
      if (t) t.textContent = paused ? "Live updates paused" : "Live: updates every " + every + " s while this tab is visible";
    }
  }
  function refresh() {
    if (!every || paused || busy || doc.visibilityState !== "visible") return;
    if (new URLSearchParams(location.search).get("at")) return; // the past does not change
    if (main.hasAttribute("data-reload")) { location.reload(); return; }
    if (!window.htmx || !liveRegion()) return;
    busy = true;
    var done = function () { busy = false; last = Date.now(); };
    window.htmx.ajax("GET", location.pathname + location.search, { target: "#live", select: "#live", swap: "outerHTML" }).then(done, done);
  }
  if (every > 0) {
    setInterval(function () { if (Date.now() - last >= every * 1000) refresh(); }, 1000);
    doc.addEventListener("visibilitychange", function () {
      if (doc.visibilityState === "visible" && Date.now() - last >= every * 1000) refresh();
    });
  }

  // ---- Filter forms: the URL holds every filter ----
  function apply(form) {
    var params = new URLSearchParams();
    new FormData(form).forEach(function (v, k) { if (v !== "") params.append(k, v); });
    var path = form.getAttribute("action");
    var url = path + (params.toString() ? "?" + params.toString() : "");
    if (!window.htmx || !liveRegion() || path !== location.pathname) { location.href = url; return; }
    history.pushState({ tidemark: true }, "", url);
    last = Date.now();
    window.htmx.ajax("GET", url, { target: "#live", select: "#live", swap: "outerHTML" });
  }
  doc.addEventListener("submit", function (e) {
    var f = e.target;
    if (f.matches && f.matches("form[data-live-form]")) { e.preventDefault(); apply(f); }
  });
  doc.addEventListener("change", function (e) {
    var t = e.target, f = t && t.form;
    if (f && f.matches("form[data-live-form]") && t.tagName === "SELECT") apply(f);
  });
  window.addEventListener("popstate", function () { location.reload(); });

  // ---- Clicks: theme switch, pause ----
  doc.addEventListener("click", function (e) {
    var t = e.target.closest ? e.target.closest("button") : null;
    if (!t) return;
    if (t.id === "theme") setTheme({ system: "light", light: "dark", dark: "system" }[theme()]);
    if (t.classList.contains("live-toggle")) { paused = !paused; showPaused(); if (!paused) refresh(); }
  });

  // ---- Keyboard: / search, g + key pages, Escape leaves a field ----
  var gAt = 0;
  doc.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var t = e.target, typing = t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
    if (typing) { if (e.key === "Escape") t.blur(); return; }
    if (e.key === "/") {
      var q = doc.getElementById("q");
      if (q) { e.preventDefault(); q.focus(); q.select(); }
      return;
    }
    if (e.key === "g") { gAt = Date.now(); return; }
    if (gAt && Date.now() - gAt < 1500) {
      gAt = 0;
      var a = doc.querySelector('.menu a[data-key="' + e.key + '"]');
      if (a) { e.preventDefault(); location.href = a.href; }
    }
  });

  // ---- Sign-in: a link from another site does not carry the session
  // cookie (SameSite=Strict); ask from here whether it is there. ----
  var login = doc.querySelector(".login[data-next]");
  if (login && window.fetch) {
    var key = "tidemark-login-check", prev = 0;
    try { prev = parseInt(sessionStorage.getItem(key) || "0", 10); sessionStorage.setItem(key, String(Date.now())); } catch (e) { prev = Date.now(); }
    if (Date.now() - prev > 10000) {
      fetch("/login/check", { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (s) {
        if (s.signedIn) location.replace(login.getAttribute("data-next") || "/");
      }).catch(function () { /* stay on the form */ });
    }
  }

  doc.addEventListener("htmx:afterSwap", function () { updateTimes(); showPaused(); });
  showTheme();
  updateTimes();
  setInterval(updateTimes, 30000);
})();
