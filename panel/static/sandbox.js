// The sandbox page: the follower's name is asked once, at the top; the comment and DM forms
// send as whoever is typed there (without JavaScript, as the follower last shown).
(function () {
  "use strict";
  document.addEventListener("input", function (event) {
    if (event.target.id !== "show-username") { return; }
    var name = event.target.value.trim().replace(/^@/, "");
    document.querySelectorAll("input.follower-name").forEach(function (input) { input.value = name; });
    document.querySelectorAll(".follower-shown").forEach(function (el) { el.textContent = "@" + name; });
  });
})();
