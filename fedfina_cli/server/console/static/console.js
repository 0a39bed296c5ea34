// The console's one script (served by fedfina; the Content-Security-Policy allows no other):
// a transcript's times play the recording from that moment.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-seek]");
  const player = document.getElementById("player");
  if (!button || !player) return;
  player.currentTime = Number(button.dataset.seek);
  player.play().catch(() => {});  // a browser may refuse to play before the page was used: the time is set
  player.focus();
});
