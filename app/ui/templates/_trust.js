  // -- Issue 20: why is … (not) subscribed? and the decision lists (_trust.html) --------------

  var DEC_ROWS = 50;
  var decOffset = 0;
  var decTotal = 0;
  var decActions = [];

  function trustDownload(path, name, msg) {
    return request("GET", path, undefined, "text/csv")
      .then(function (response) { return response.blob(); })
      .then(function (blob) {
        var url = URL.createObjectURL(blob);
        var a = document.createElement("a");
        a.href = url;
        a.download = name;
        document.body.appendChild(a);
        a.click();
        a.remove();
        setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
      }, function (error) { showError(msg, error); });
  }

  function whoQuery() { return "/api/v1/contacts?email=" + encodeURIComponent($("who-email").value.trim()); }

  $("who-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var button = $("who-search");
    if (!$("who-email").value.trim()) { return; }
    setBusy(button, true);
    api("GET", whoQuery()).then(function (person) {
      show($("who-msg"), "", "");
      var verdict = $("who-verdict");
      verdict.textContent = (person.decision.subscribed ? T.who_yes : T.who_no) + " · " + person.email;
      verdict.className = person.decision.subscribed ? "verdict-yes" : "verdict-no";
      $("who-rule").textContent = person.decision.text;
      var body = $("who-table").tBodies[0];
      body.textContent = "";
      person.history.slice().reverse().forEach(function (item) {
        var tr = document.createElement("tr");
        cell(tr, dateTime(item.at), "nowrap");
        cell(tr, item.text);
        labelRow($("who-table"), tr);
        body.appendChild(tr);
      });
      $("who-table").hidden = !person.history.length;
      $("who-empty").hidden = !!person.history.length;
      $("who-csv").hidden = false;
      $("who-result").hidden = false;
    }, function (error) { showError($("who-msg"), error); })
      .then(function () { setBusy(button, false); });
  });

  $("who-csv").addEventListener("click", function () {
    trustDownload(whoQuery() + "&format=csv", "consent-history.csv", $("who-msg"));
  });

  function decPath() {
    var q = $("dec-q").value.trim();
    return "/api/v1/decisions/" + $("dec-kind").value + (q ? "?q=" + encodeURIComponent(q) : "?");
  }

  function trustLoad() {
    return api("GET", decPath() + "&offset=" + decOffset + "&limit=" + DEC_ROWS).then(function (page) {
      decTotal = page.total;
      decActions = page.actions;
      var body = $("dec-table").tBodies[0];
      body.textContent = "";
      $("dec-page-all").checked = false;
      page.items.forEach(function (item) {
        var tr = document.createElement("tr");
        var box = document.createElement("input");
        box.type = "checkbox";
        box.value = item.email;
        box.setAttribute("aria-label", T.dec_select + " " + item.email);
        cell(tr, box);
        cell(tr, item.email, "email");
        cell(tr, item.address_id === null ? T.none : String(item.address_id), "num");
        cell(tr, dateTime(item.since), "nowrap");
        var reason = document.createElement("span");
        reason.textContent = item.reason;
        if (item.original) {
          var original = document.createElement("span");
          original.className = "original";
          original.textContent = T.dec_original + ": " + item.original;
          reason.appendChild(original);
        }
        cell(tr, reason);
        labelRow($("dec-table"), tr);
        body.appendChild(tr);
      });
      var any = page.items.length > 0;
      $("dec-table").hidden = !any;
      $("dec-actions").hidden = !any;
      $("dec-pager").hidden = decTotal <= DEC_ROWS;
      $("dec-prev").disabled = decOffset === 0;
      $("dec-next").disabled = decOffset + DEC_ROWS >= decTotal;
      $("dec-info").textContent = any ? fmt("dec_page", {
        from: num(decOffset + 1), to: num(decOffset + page.items.length), total: num(decTotal)
      }) : T.dec_empty;
      Array.prototype.forEach.call($("dec-actions").querySelectorAll("button"), function (b) {
        b.hidden = decActions.indexOf(b.dataset.action) < 0;
      });
    }, function (error) {
      if (error.status === 404) { $("dec-info").textContent = T.dec_empty; return; }
      showError($("dec-msg"), error);
    });
  }

  $("dec-filter").addEventListener("submit", function (event) {
    event.preventDefault();
    decOffset = 0;
    trustLoad();
  });
  $("dec-kind").addEventListener("change", function () { decOffset = 0; show($("dec-msg"), "", ""); trustLoad(); });
  $("dec-prev").addEventListener("click", function () { decOffset = Math.max(0, decOffset - DEC_ROWS); trustLoad(); });
  $("dec-next").addEventListener("click", function () { decOffset += DEC_ROWS; trustLoad(); });
  $("dec-page-all").addEventListener("change", function () {
    var on = this.checked;
    Array.prototype.forEach.call($("dec-table").tBodies[0].querySelectorAll("input"), function (b) { b.checked = on; });
  });
  $("dec-csv").addEventListener("click", function () {
    trustDownload(decPath() + "&format=csv", $("dec-kind").value + ".csv", $("dec-msg"));
  });

  Array.prototype.forEach.call($("dec-actions").querySelectorAll("button"), function (button) {
    button.addEventListener("click", function () {
      var body = { action: button.dataset.action };
      if ($("dec-scope").value === "selected") {
        body.emails = Array.prototype.map.call(
          $("dec-table").tBodies[0].querySelectorAll("input:checked"), function (b) { return b.value; });
        if (!body.emails.length) { show($("dec-msg"), "info", T.dec_nothing_selected); return; }
      }
      setBusy(button, true);
      api("POST", "/api/v1/decisions/" + $("dec-kind").value, body).then(function (result) {
        show($("dec-msg"), "ok", fmt("dec_done", { count: num(result.decided.length), action: button.textContent }));
        decOffset = 0;
        return trustLoad();
      }, function (error) { showError($("dec-msg"), error); })
        .then(function () { setBusy(button, false); refreshSoon(); });
    });
  });
