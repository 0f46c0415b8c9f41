// The portal's only script, served by the portal itself. Every page works without it; it
// adds: checking indicator rules as the user types, a draft kept in the browser (survives a
// lost connection or a closed tab), and live updates of the compliance board (SSE).
"use strict";

(function () {
  function checkIndicator(input, form) {
    var error = document.getElementById("err-" + input.id);
    var raw = input.value.replace(/[.\s]/g, "");
    var message = "";
    if (raw !== "") {
      if (/^-\d+$/.test(raw)) {
        message = "Không được là số âm.";
      } else if (!/^\d{1,12}$/.test(raw)) {
        message = "Phải là một số nguyên, ví dụ 12.";
      } else if (input.dataset.notMoreThan) {
        var whole = form.querySelector('[data-code="' + input.dataset.notMoreThan + '"]');
        var wholeRaw = whole ? whole.value.replace(/[.\s]/g, "") : "";
        if (/^\d+$/.test(wholeRaw) && parseInt(raw, 10) > parseInt(wholeRaw, 10)) {
          message = "“" + input.dataset.label + "” (" + raw + ") không được lớn hơn “" +
            input.dataset.wholeLabel + "” (" + wholeRaw + ").";
        }
      }
    }
    if (error) { error.textContent = message; }
    if (message) { input.setAttribute("aria-invalid", "true"); } else { input.removeAttribute("aria-invalid"); }
  }

  function checkAll(form) {
    form.querySelectorAll("input[data-code]").forEach(function (input) { checkIndicator(input, form); });
  }

  function keepDraft(form) {
    var key = form.dataset.draftKey;
    var status = document.getElementById("draft-status");
    var fields = form.querySelectorAll("textarea, input[data-code]");
    var saved = null;
    try { saved = JSON.parse(window.localStorage.getItem(key) || "null"); } catch (e) { saved = null; }
    if (saved && saved.values) {
      var restored = 0;
      fields.forEach(function (field) {
        if (!field.value && saved.values[field.name]) { field.value = saved.values[field.name]; restored += 1; }
      });
      if (restored && status) {
        status.textContent = "Đã khôi phục bản nháp lưu trên máy này lúc " + saved.at + ".";
      }
    }
    var timer = null;
    form.addEventListener("input", function (event) {
      if (event.target.dataset && event.target.dataset.code) { checkAll(form); }
      window.clearTimeout(timer);
      timer = window.setTimeout(function () {
        var values = {};
        fields.forEach(function (field) { if (field.value) { values[field.name] = field.value; } });
        var at = new Date().toLocaleTimeString("vi-VN");
        try {
          window.localStorage.setItem(key, JSON.stringify({ at: at, values: values }));
          if (status) { status.textContent = "Bản nháp đã lưu trên máy này lúc " + at + "."; }
        } catch (e) { /* storage full or disabled: the form still works */ }
      }, 400);
    });
  }

  function clearDraft(element) {
    try { window.localStorage.removeItem(element.dataset.clearDraft); } catch (e) { /* nothing kept */ }
  }

  function liveBoard(box) {
    if (!window.EventSource) { return; }
    var status = document.getElementById("live-status");
    var source = new EventSource(box.dataset.liveEvents);
    var pending = false;
    source.addEventListener("change", function () {
      if (pending) { return; }
      pending = true;
      window.fetch(box.dataset.liveFragment, { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          pending = false;
          if (html === null) { return; }
          box.innerHTML = html;
          box.dataset.updated = String(Number(box.dataset.updated || "0") + 1);
          if (status) { status.textContent = "Đã cập nhật lúc " + new Date().toLocaleTimeString("vi-VN") + "."; }
        })
        .catch(function () { pending = false; });
    });
    source.addEventListener("open", function () { box.dataset.liveConnected = "1"; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-draft-key]").forEach(function (form) {
      keepDraft(form);
    });
    document.querySelectorAll("[data-clear-draft]").forEach(clearDraft);
    document.querySelectorAll("[data-live-events]").forEach(liveBoard);
  });
})();
