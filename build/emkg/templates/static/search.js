/* emkg search: filters the local index (search/index.js sets window.EMKG_SEARCH); no server, no network.
   Results are built with textContent only, so labels can never inject markup. */
(function () {
  "use strict";
  var index = window.EMKG_SEARCH || [];
  var form = document.getElementById("search-form");
  var input = document.getElementById("search-q");
  var results = document.getElementById("search-results");
  var all = document.getElementById("search-all");
  if (!form || !input || !results) { return; }
  var root = "../";

  function fold(text) {
    return String(text).toLowerCase().normalize("NFKD").replace(/[\u0300-\u036f]/g, "");
  }
  var folded = index.map(function (entry) { return fold(entry.label); });

  function score(label, query, words) {
    if (label === query) { return 0; }
    if (label.indexOf(query) === 0) { return 1; }
    if ((" " + label).indexOf(" " + query) >= 0) { return 2; }
    for (var i = 0; i < words.length; i++) {
      if (label.indexOf(words[i]) < 0) { return -1; }
    }
    return 3;
  }

  function show(raw) {
    var query = fold(raw.trim());
    while (results.firstChild) { results.removeChild(results.firstChild); }
    if (!query) {
      if (all) { all.hidden = false; }
      return;
    }
    var words = query.split(/\s+/);
    var hits = [];
    for (var i = 0; i < index.length; i++) {
      var s = score(folded[i], query, words);
      if (s >= 0) { hits.push([s, i]); }
    }
    hits.sort(function (a, b) { return a[0] - b[0] || folded[a[1]].localeCompare(folded[b[1]]); });
    var seen = {};
    var unique = [];
    hits.forEach(function (hit) {
      var entry = index[hit[1]];
      if (!seen[entry.url]) { seen[entry.url] = true; unique.push(entry); }
    });
    var heading = document.createElement("h2");
    heading.id = "h-results";
    heading.textContent = unique.length + (unique.length === 1 ? " result" : " results") + " for \u201c" + raw.trim() + "\u201d";
    results.appendChild(heading);
    var list = document.createElement("ol");
    unique.slice(0, 200).forEach(function (entry) {
      var item = document.createElement("li");
      var link = document.createElement("a");
      link.href = root + entry.url;
      link.textContent = entry.see ? entry.see : entry.label;
      item.appendChild(link);
      if (entry.see) {
        item.appendChild(document.createTextNode(" (" + entry.label + ")"));
      }
      if (entry.type) {
        var tag = document.createElement("span");
        tag.className = "tag";
        tag.textContent = entry.type;
        item.appendChild(document.createTextNode(" "));
        item.appendChild(tag);
      }
      list.appendChild(item);
    });
    if (unique.length) { results.appendChild(list); }
    if (unique.length > 200) {
      var more = document.createElement("p");
      more.textContent = "Showing the first 200; type more words to narrow the search.";
      results.appendChild(more);
    }
    if (all) { all.hidden = true; }
  }

  var params = new URLSearchParams(window.location.search);
  input.value = params.get("q") || "";
  show(input.value);
  input.addEventListener("input", function () { show(input.value); });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    show(input.value);
    try {
      window.history.replaceState(null, "", "?q=" + encodeURIComponent(input.value));
    } catch (ignored) { /* file:// may refuse; the results are shown anyway */ }
  });
}());
