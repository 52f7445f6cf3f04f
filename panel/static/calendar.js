// The posts calendar: FullCalendar (vendored) with month, week and list views. Event times
// are wall-clock times in the viewer's zone (their own, else the team's; the page names it),
// so the calendar runs in "UTC" (no conversion) and a drag sends the new wall-clock time
// back; a refused move is undone and the reason shown.
(function () {
  "use strict";

  function csrf() { return document.querySelector("meta[name='csrf-token']").content; }

  function wallClock(date) { return date.toISOString().slice(0, 19); }

  document.addEventListener("DOMContentLoaded", function () {
    var el = document.getElementById("calendar");
    if (!el || !window.FullCalendar) { return; }
    var message = document.getElementById("calendar-message");
    var account = document.getElementById("calendar-account");
    var calendar = new FullCalendar.Calendar(el, {
      initialView: "dayGridMonth",
      timeZone: "UTC",
      firstDay: 1,
      height: "auto",
      headerToolbar: { left: "prev,next today", center: "title", right: "dayGridMonth,timeGridWeek,listMonth" },
      buttonText: { today: "Today", month: "Month", week: "Week", list: "List" },
      editable: el.dataset.editable === "true",
      eventStartEditable: el.dataset.editable === "true",
      eventDurationEditable: false,
      displayEventTime: true,
      eventTimeFormat: { hour: "2-digit", minute: "2-digit", hour12: false },
      events: function (info, success, failure) {
        var params = new URLSearchParams({ start: info.startStr, end: info.endStr });
        if (account.value) { params.set("account_id", account.value); }
        fetch(el.dataset.events + "?" + params.toString(), { headers: { Accept: "application/json" } })
          .then(function (r) { return r.json(); }).then(success, failure);
      },
      eventDrop: function (info) {
        var url = el.dataset.reschedule.replace("/0/", "/" + info.event.id + "/");
        message.hidden = true;
        fetch(url, {
          method: "POST",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
          body: JSON.stringify({ start: wallClock(info.event.start) }),
        }).then(function (response) {
          return response.json().then(function (answer) {
            if (!response.ok) {
              info.revert();
              message.textContent = answer.error || "The post could not be moved.";
              message.hidden = false;
            } else {
              info.event.setExtendedProp("status", answer.status);
              info.event.setProp("classNames", ["status-" + answer.status]);
            }
          });
        }, function () { info.revert(); message.textContent = "The post could not be moved."; message.hidden = false; });
      },
    });
    calendar.render();
    account.addEventListener("change", function () { calendar.refetchEvents(); });
    window.reelayCalendar = calendar;
  });
})();
