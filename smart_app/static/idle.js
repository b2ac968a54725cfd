// Idle sign-out on the phone: after the idle limit with no touch, key or scroll, the page with the
// brief leaves the screen (the server has ended the session by then too). Two minutes before, a
// warning; any activity dismisses it and, at most once a minute, tells the server the responder
// is still here. Without JavaScript the server's idle limit still applies.
(function () {
  var body = document.body;
  var limit = parseInt(body.getAttribute("data-idle-seconds"), 10);
  if (!limit) { return; }
  var warning = document.getElementById("idle-warning");
  var last = Date.now(), told = Date.now();
  function stillHere() {
    fetch("/still-here", {method: "POST", credentials: "same-origin",
                          headers: {"X-CSRF-Token": body.getAttribute("data-csrf") || ""}});
  }
  function activity() {
    last = Date.now();
    if (warning) { warning.hidden = true; }
    if (Date.now() - told > 60000) { told = Date.now(); stillHere(); }
  }
  ["pointerdown", "keydown", "scroll", "touchstart"].forEach(function (name) {
    window.addEventListener(name, activity, {passive: true});
  });
  window.setInterval(function () {
    var idle = (Date.now() - last) / 1000;
    if (idle >= limit) { window.location.replace("/"); }
    else if (idle >= limit - 120 && warning) { warning.hidden = false; }
  }, 5000);
})();
