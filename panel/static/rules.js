// The rule editor: sections that follow the trigger and DM type, reply variations, and the
// lead-flow builder (add, reorder, remove steps). Step fields are named flow-<n>-<name> in
// the order shown; renumbering keeps that true after every move.
(function () {
  "use strict";

  function form() { return document.getElementById("rule-form"); }

  function showSections() {
    var f = form();
    if (!f) { return; }
    var trigger = f.querySelector("#trigger").value;
    var dmType = f.querySelector("#dm_type").value;
    f.querySelectorAll("[class*='when-trigger-']").forEach(function (el) {
      el.hidden = !el.classList.contains("when-trigger-" + trigger);
    });
    f.querySelectorAll("[class*='when-dm-']").forEach(function (el) {
      el.hidden = !el.classList.contains("when-dm-" + dmType);
    });
    f.querySelectorAll(".flow-step").forEach(showStep);
  }

  function showStep(step) {
    var kind = step.querySelector(".step-kind").value;
    step.dataset.kind = kind;
    step.querySelectorAll(".when-ask, .when-send, .when-branch, .when-save").forEach(function (el) {
      el.hidden = !el.classList.contains("when-" + kind);
    });
    var field = step.querySelector(".step-field");
    step.querySelectorAll(".when-custom").forEach(function (el) {
      el.hidden = kind !== "ask" || !field || field.value !== "custom";
    });
  }

  function renumber() {
    var steps = document.querySelectorAll("#flow-steps .flow-step");
    steps.forEach(function (step, index) {
      step.querySelector(".step-number").textContent = String(index + 1);
      step.querySelectorAll("[name^='flow-'], [id^='flow-'], label[for^='flow-'], [aria-describedby^='flow-']").forEach(function (el) {
        ["name", "id", "for", "aria-describedby"].forEach(function (attr) {
          var value = el.getAttribute(attr);
          if (value) { el.setAttribute(attr, value.replace(/^flow-(\d+|__N__)-/, "flow-" + index + "-")); }
        });
      });
    });
    document.body.dispatchEvent(new Event("flowchange"));
  }

  function nextStepId() {
    var used = {};
    document.querySelectorAll("#flow-steps .step-id").forEach(function (input) { used[input.value] = true; });
    var n = 1;
    while (used["s" + n]) { n += 1; }
    return "s" + n;
  }

  // A new step goes before the closing message (the last step when it only sends), so the
  // flow keeps ending with a thank-you instead of going quiet after the last answer.
  function addStep(options) {
    var settings = options || {};
    var template = document.getElementById("step-template");
    var holder = document.getElementById("flow-steps");
    var step = template.content.firstElementChild.cloneNode(true);
    var last = holder.lastElementChild;
    var closing = last && last.querySelector(".step-kind").value === "send";
    if (closing && !settings.closing) { holder.insertBefore(step, last); } else { holder.appendChild(step); }
    step.querySelector(".step-id").value = nextStepId();
    if (settings.closing) {
      step.querySelector(".step-kind").value = "send";
      step.querySelector("textarea").value = holder.closest("#lead-flow").dataset.closing;
    }
    showStep(step);
    renumber();
    if (!settings.quiet) { step.querySelector("textarea, select").focus(); }
  }

  function startFlow() {
    addStep();
    addStep({ closing: true, quiet: true });
    document.querySelector("#flow-steps .flow-step textarea").focus();
  }

  function addVariation(name) {
    var holder = document.querySelector(".variations[data-name='" + name + "']");
    var first = holder.querySelector(".variation");
    var copy = first.cloneNode(true);
    var area = copy.querySelector("textarea");
    area.value = "";
    area.removeAttribute("aria-invalid");
    holder.appendChild(copy);
    area.focus();
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof HTMLElement)) { return; }
    var step = target.closest(".flow-step");
    if (target.id === "add-step") { addStep(); return; }
    if (target.classList.contains("variation-add")) { addVariation(target.dataset.for); return; }
    if (target.classList.contains("variation-remove")) {
      var variation = target.closest(".variation");
      var holder = variation.parentElement;
      if (holder.querySelectorAll(".variation").length > 1) { variation.remove(); }
      else { variation.querySelector("textarea").value = ""; }
      document.body.dispatchEvent(new Event("flowchange"));
      return;
    }
    if (!step) { return; }
    if (target.classList.contains("step-remove")) { step.remove(); renumber(); }
    else if (target.classList.contains("step-up") && step.previousElementSibling) {
      step.parentElement.insertBefore(step, step.previousElementSibling); renumber();
    } else if (target.classList.contains("step-down") && step.nextElementSibling) {
      step.parentElement.insertBefore(step.nextElementSibling, step); renumber();
    }
  });

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (!(target instanceof HTMLElement)) { return; }
    if (target.id === "trigger" || target.id === "dm_type") { showSections(); }
    var step = target.closest(".flow-step");
    if (step) { showStep(step); }
    if (target.id === "dm_type" && target.value === "lead_capture" &&
        !document.querySelector("#flow-steps .flow-step")) { startFlow(); }
  });

  document.addEventListener("DOMContentLoaded", function () {
    showSections();
    var f = form();
    if (f) { f.addEventListener("submit", renumber); }
  });
})();
