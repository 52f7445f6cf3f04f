// The posts calendar: FullCalendar (vendored) with month, week and list views. Event times
// are wall-clock times in the viewer's zone (their own, else the team's; the page names it),
// so the calendar runs in "UTC" (no conversion) and a drag sends the new wall-clock time
// back; a refused move is undone and the reason shown.
// In the month view an event shows its thumbnail, time, account and the caption's first
// words; hovering or focusing it (a first tap on a touch screen) shows a larger preview.
(function () {
  "use strict";

  function csrf() { return document.querySelector("meta[name='csrf-token']").content; }

  function wallClock(date) { return date.toISOString().slice(0, 19); }

  function element(tag, className, text) {
    var el = document.createElement(tag);
    if (className) { el.className = className; }
    if (text) { el.textContent = text; }
    return el;
  }

  function thumbnail(props, className) {
    if (!props.thumb) { return element("span", className + " no-thumb", props.kind.charAt(0).toUpperCase()); }
    var el = document.createElement(props.thumb_video ? "video" : "img");
    el.className = className;
    el.src = props.thumb;
    if (props.thumb_video) { el.muted = true; el.preload = "metadata"; } else { el.alt = ""; el.loading = "lazy"; }
    return el;
  }

  // The month view's event: thumbnail, then time and account, then the caption's first words.
  function monthContent(arg) {
    var props = arg.event.extendedProps;
    if (arg.view.type !== "dayGridMonth" || props.account === undefined) { return true; }
    var box = element("span", "cal-event");
    box.appendChild(thumbnail(props, "cal-thumb"));
    var text = element("span", "cal-text");
    // Plain text in each line, so the ellipsis cuts it inside the day's cell.
    text.append(
      element("span", "cal-line", arg.timeText + " @" + props.account),
      element("span", "cal-words", props.words || "(" + props.kind + ", no caption)")
    );
    box.appendChild(text);
    return { domNodes: [box] };
  }

  function preview(box, event, anchor) {
    var props = event.extendedProps;
    box.replaceChildren();
    box.appendChild(thumbnail(props, "cal-preview-media"));
    var head = element("p", "cal-preview-head");
    head.append(element("strong", "", "@" + props.account), element("span", "", " · " + props.time + " (" + props.timezone + ")"));
    var facts = element("p", "cal-preview-facts", props.kind + (props.items > 1 ? " · " + props.items + " items" : "") + " · " + props.status);
    var caption = element("p", "cal-preview-caption prewrap", props.caption || "(no caption)");
    var open = element("a", "cal-preview-open", "Open the post");
    open.href = event.url;
    box.append(head, facts, caption, open);
    box.dataset.eventId = event.id;
    box.hidden = false;
    var where = anchor.getBoundingClientRect();
    var width = Math.min(320, document.documentElement.clientWidth - 16);
    var left = Math.min(Math.max(8, where.left + window.scrollX), window.scrollX + document.documentElement.clientWidth - width - 8);
    box.style.width = width + "px";
    box.style.left = left + "px";
    box.style.top = (where.bottom + window.scrollY + 4) + "px";
  }

  document.addEventListener("DOMContentLoaded", function () {
    var el = document.getElementById("calendar");
    if (!el || !window.FullCalendar) { return; }
    var message = document.getElementById("calendar-message");
    var account = document.getElementById("calendar-account");
    var box = document.getElementById("calendar-preview");
    var touch = window.matchMedia("(hover: none)").matches;
    var hideSoon = null;
    function hide() { box.hidden = true; box.dataset.eventId = ""; }
    function keep() { if (hideSoon) { clearTimeout(hideSoon); hideSoon = null; } }
    function later() { keep(); hideSoon = setTimeout(hide, 250); }
    box.addEventListener("mouseenter", keep);
    box.addEventListener("mouseleave", later);
    document.addEventListener("keydown", function (e) { if (e.key === "Escape") { hide(); } });
    document.addEventListener("click", function (e) {
      if (!box.hidden && !box.contains(e.target) && !e.target.closest(".fc-event")) { hide(); }
    });
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
      eventContent: monthContent,
      eventDidMount: function (info) {
        var el = info.el;
        el.setAttribute("aria-label", info.event.title + ", " + info.event.extendedProps.time);
        // A tap also fires mouseenter and focus: on a touch screen only eventClick previews.
        if (touch) { return; }
        el.addEventListener("mouseenter", function () { keep(); preview(box, info.event, el); });
        el.addEventListener("mouseleave", later);
        el.addEventListener("focus", function () { keep(); preview(box, info.event, el); });
        el.addEventListener("blur", later);
      },
      // On a touch screen the first tap shows the preview; a second tap opens the post.
      eventClick: function (info) {
        if (touch && box.dataset.eventId !== info.event.id) {
          info.jsEvent.preventDefault();
          keep();
          preview(box, info.event, info.el);
        }
      },
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
