// The emergency window's countdown (the page says the minutes left without it). When the window
// ends, the page reloads: the server no longer sends the emergency purpose.
(function () {
  var clock = document.querySelector("[data-countdown]");
  if (!clock) { return; }
  var ends = Date.now() + 1000 * parseInt(clock.getAttribute("data-countdown"), 10);
  function tick() {
    var left = Math.max(0, Math.round((ends - Date.now()) / 1000));
    var minutes = Math.floor(left / 60), seconds = left % 60;
    clock.textContent = minutes + ":" + (seconds < 10 ? "0" : "") + seconds;
    if (left === 0) { window.location.reload(); return; }
    window.setTimeout(tick, 1000);
  }
  tick();
})();
