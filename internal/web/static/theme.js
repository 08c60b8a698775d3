// Runs before the page paints: applies the theme chosen with the switch
// (light or dark), else the OS's (no attribute).
(function () {
  try {
    var t = localStorage.getItem("tidemark-theme");
    if (t === "light" || t === "dark") document.documentElement.setAttribute("data-theme", t);
  } catch (e) { /* storage disabled: follow the OS */ }
})();
