// The composer: uploads with progress (drag and drop or file picker), picking from the library,
// reordering carousel items (drag, or Alt+arrow keys), live caption counts against
// Instagram's limits, an AI caption, and an Instagram-like preview.
(function () {
  "use strict";

  var HASHTAG = /(?<![\w#])#[\p{L}\p{N}_]+/gu;
  var MENTION = /(?<![\w@])@[A-Za-z0-9._]+/g;

  function $(selector) { return document.querySelector(selector); }
  function csrf() { return document.querySelector("meta[name='csrf-token']").content; }

  function media(url, mime) {
    var el = document.createElement(mime.indexOf("video/") === 0 ? "video" : "img");
    el.src = url;
    if (el.tagName === "VIDEO") { el.muted = true; } else { el.alt = ""; }
    return el;
  }

  function pick(id, url, mime) {
    var list = $("#picked");
    if (list.querySelector("li[data-id='" + id + "']")) { return; }
    if ($("#kind").value !== "carousel") { list.innerHTML = ""; }
    var li = document.createElement("li");
    li.draggable = true;
    li.dataset.id = id; li.dataset.url = url; li.dataset.mime = mime;
    li.tabIndex = 0;
    var input = document.createElement("input");
    input.type = "hidden"; input.name = "media_ids"; input.value = id;
    var order = document.createElement("span"); order.className = "order";
    var remove = document.createElement("button");
    remove.type = "button"; remove.className = "secondary unpick"; remove.textContent = "×";
    remove.setAttribute("aria-label", "Remove");
    li.append(input, media(url, mime), order, remove);
    list.appendChild(li);
    refresh();
  }

  function upload(file) {
    var form = $("#composer");
    var row = document.createElement("div");
    var label = document.createElement("small"); label.textContent = file.name;
    var bar = document.createElement("progress"); bar.className = "upload"; bar.max = 100; bar.value = 0;
    row.append(label, bar);
    $("#uploads").appendChild(row);
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.dataset.uploadUrl);
    xhr.setRequestHeader("X-CSRF-Token", csrf());
    xhr.upload.onprogress = function (e) { if (e.lengthComputable) { bar.value = Math.round(e.loaded * 100 / e.total); } };
    xhr.onload = function () {
      var answer = {};
      try { answer = JSON.parse(xhr.responseText); } catch (err) { answer = { error: "Upload failed." }; }
      if (xhr.status === 201) { row.remove(); pick(String(answer.id), answer.url, answer.mime); addToLibrary(answer); }
      else { bar.remove(); label.className = "error"; label.textContent = file.name + ": " + (answer.error || "upload failed"); }
    };
    xhr.onerror = function () { label.className = "error"; label.textContent = file.name + ": upload failed"; };
    var data = new FormData(); data.append("file", file);
    xhr.send(data);
  }

  // An upload joins the library too, so "From the library (N)" counts it without a reload.
  function addToLibrary(answer) {
    var grid = $("#library-picker");
    var id = String(answer.id);
    if (grid.querySelector(".pick[data-id='" + id + "']")) { return; }
    var card = document.createElement("button");
    card.type = "button"; card.className = "media-card outline secondary pick";
    card.dataset.id = id; card.dataset.url = answer.url; card.dataset.mime = answer.mime;
    card.title = answer.filename || "";
    var shown = media(answer.url, answer.mime);
    if (shown.tagName === "IMG") { shown.alt = answer.filename || ""; }
    card.appendChild(shown);
    grid.prepend(card);
    $("#library-count").textContent = String(grid.querySelectorAll(".pick").length);
  }

  // Several photos for a one-photo kind: the post becomes a carousel (and says so), rather
  // than keeping one photo and dropping the rest without a word.
  function chosen(files) {
    var list = Array.from(files);
    var photos = list.filter(function (f) { return f.type.indexOf("image/") === 0; });
    var note = $("#kind-note");
    note.textContent = "";
    if ($("#kind").value === "image" && list.length > 1 && photos.length >= 1) {
      $("#kind").value = "carousel";
      sections();
      note.textContent = "Several files chosen: Kind is now Carousel. Choose Image again to keep only one.";
    }
    list.forEach(upload);
  }

  function counts() {
    var text = $("#caption").value;
    var box = $("#caption-counts");
    var values = {
      chars: [Array.from(text.trim()).length, +box.dataset.caption],
      hashtags: [(text.match(HASHTAG) || []).length, +box.dataset.hashtags],
      mentions: [(text.match(MENTION) || []).length, +box.dataset.mentions],
    };
    var words = { chars: "characters", hashtags: "hashtags", mentions: "mentions" };
    Object.keys(values).forEach(function (key) {
      var el = box.querySelector(".count-" + key);
      el.textContent = values[key][0] + " / " + values[key][1] + " " + words[key];
      el.classList.toggle("over", values[key][0] > values[key][1]);
    });
  }

  function preview() {
    var users = Array.from(document.querySelectorAll("input[name='account_ids']:checked")).map(function (i) { return i.dataset.username; });
    var user = users[0] || "account";
    document.querySelectorAll("#ig-preview .ig-user, #ig-preview .ig-user-inline").forEach(function (el) { el.textContent = user; });
    $("#ig-preview .ig-text").textContent = $("#caption").value;
    var box = $("#ig-preview .ig-media");
    Array.from(box.querySelectorAll("img, video")).forEach(function (el) { el.remove(); });
    var items = document.querySelectorAll("#picked li");
    if (items.length) { box.prepend(media(items[0].dataset.url, items[0].dataset.mime)); }
    box.querySelector(".ig-dots").textContent = items.length > 1 ? "● " + "○ ".repeat(items.length - 1) : "";
  }

  function sections() {
    var kind = $("#kind").value;
    var action = (document.querySelector("input[name='action']:checked") || {}).value;
    document.querySelectorAll("[class*='when-kind-']").forEach(function (el) { el.hidden = !el.classList.contains("when-kind-" + kind); });
    document.querySelectorAll("[class*='when-action-']").forEach(function (el) { el.hidden = !el.classList.contains("when-action-" + action); });
  }

  function refresh() {
    document.querySelectorAll("#picked li").forEach(function (li, i) { li.querySelector(".order").textContent = String(i + 1); });
    preview();
  }

  async function writeCaption() {
    var form = $("#composer");
    var status = $("#ai-status");
    status.textContent = "Writing…";
    var data = new FormData();
    data.append("topic", $("#topic").value);
    data.append("tone", $("#tone").value);
    var response = await fetch(form.dataset.captionUrl, { method: "POST", body: data, headers: { "X-CSRF-Token": csrf() } });
    var answer = await response.json();
    if (!response.ok) { status.textContent = answer.error || "The AI did not answer."; return; }
    $("#caption").value = answer.caption;
    status.textContent = "Done: edit it as you like.";
    counts(); preview();
  }

  var dragged = null;
  document.addEventListener("DOMContentLoaded", function () {
    if (!$("#composer")) { return; }
    var zone = $("#dropzone");
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (e) { if (e.dataTransfer.types.indexOf("Files") >= 0) { e.preventDefault(); zone.classList.add("over"); } });
    });
    ["dragleave", "drop"].forEach(function (name) { zone.addEventListener(name, function () { zone.classList.remove("over"); }); });
    zone.addEventListener("drop", function (e) { e.preventDefault(); chosen(e.dataTransfer.files); });
    $("#file-input").addEventListener("change", function (e) { chosen(e.target.files); e.target.value = ""; });
    $("#caption").addEventListener("input", function () { counts(); preview(); });
    $("#ai-write").addEventListener("click", writeCaption);
    var list = $("#picked");
    list.addEventListener("dragstart", function (e) { dragged = e.target.closest("li"); e.dataTransfer.effectAllowed = "move"; });
    list.addEventListener("dragover", function (e) {
      var over = e.target.closest("li");
      if (!dragged || !over || over === dragged) { return; }
      e.preventDefault();
      var after = Array.from(list.children).indexOf(over) > Array.from(list.children).indexOf(dragged);
      list.insertBefore(dragged, after ? over.nextSibling : over);
    });
    list.addEventListener("dragend", function () { dragged = null; refresh(); });
    list.addEventListener("keydown", function (e) {
      var li = e.target.closest("li");
      if (!li || !e.altKey) { return; }
      if (e.key === "ArrowLeft" && li.previousElementSibling) { list.insertBefore(li, li.previousElementSibling); }
      else if (e.key === "ArrowRight" && li.nextElementSibling) { list.insertBefore(li.nextElementSibling, li); }
      else { return; }
      e.preventDefault(); li.focus(); refresh();
    });
    document.addEventListener("click", function (e) {
      var card = e.target.closest(".pick");
      if (card) { pick(card.dataset.id, card.dataset.url, card.dataset.mime); return; }
      if (e.target.classList.contains("unpick")) { e.target.closest("li").remove(); refresh(); }
    });
    document.addEventListener("change", function (e) {
      if (e.target.id === "kind" || e.target.name === "action") { sections(); }
      if (e.target.name === "account_ids") { preview(); }
    });
    sections(); counts(); refresh();
  });
})();
