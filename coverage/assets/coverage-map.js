/* coverage gap maps: page behaviour on top of the folium-generated map (this project's own code).
 *
 * folium builds the map, layers, popups, tooltips and layer control. This file only
 *  - moves the server-rendered (escaped) legend blocks into a Leaflet control and shows the blocks
 *    of the layers currently on the map (coverageMapPage.init, called by the page's folium script);
 *  - makes tables with class "cov-sortable" sortable by clicking a header;
 *  - zooms the map to a gap area when its row (data-zoom bounds) in the side panel is clicked.
 * It moves existing DOM nodes and sets attributes only: no HTML strings are parsed here.
 */
(function () {
  "use strict";

  function legends(map, pairs) {
    var blocks = [];
    pairs.forEach(function (p) {
      var node = document.getElementById(p[0]);
      if (!node || !p[1]) return;
      node.parentNode.removeChild(node);
      blocks.push({node: node, layer: p[1]});
    });
    var div = document.createElement("div");
    div.className = "cov-legend leaflet-control";
    /* scrolling or clicking the legend (collapsible <details> sections) must not pan/zoom the map */
    L.DomEvent.disableClickPropagation(div);
    L.DomEvent.disableScrollPropagation(div);
    var ctl = L.control({position: "bottomleft"});
    ctl.onAdd = function () { return div; };
    ctl.addTo(map);
    function redraw() {
      while (div.firstChild) div.removeChild(div.firstChild);
      blocks.forEach(function (b) { if (map.hasLayer(b.layer)) div.appendChild(b.node); });
      div.style.display = div.firstChild ? "" : "none";
    }
    map.on("baselayerchange overlayadd overlayremove layeradd layerremove", redraw);
    redraw();
  }

  /* sortable tables: click a header; numeric cells carry data-sort */
  function initTables() {
    Array.prototype.forEach.call(document.querySelectorAll("table.cov-sortable"), function (table) {
      var ths = table.querySelectorAll("thead th");
      Array.prototype.forEach.call(ths, function (th, idx) {
        th.addEventListener("click", function () {
          var asc = th.getAttribute("data-dir") !== "asc";
          Array.prototype.forEach.call(ths, function (h) { h.removeAttribute("data-dir"); });
          th.setAttribute("data-dir", asc ? "asc" : "desc");
          var tbody = table.tBodies[0];
          var rows = Array.prototype.slice.call(tbody.rows);
          rows.sort(function (a, b) {
            var x = a.cells[idx].getAttribute("data-sort"), y = b.cells[idx].getAttribute("data-sort");
            var nx = parseFloat(x), ny = parseFloat(y), c;
            if (!isNaN(nx) && !isNaN(ny)) c = nx - ny;
            else if (isNaN(nx) !== isNaN(ny)) c = isNaN(nx) ? 1 : -1;
            else c = String(x).localeCompare(String(y), "zh");
            return asc ? c : -c;
          });
          rows.forEach(function (r) { tbody.appendChild(r); });
        });
      });
    });
  }

  /* rows with data-zoom="[[south, west], [north, east]]" (gap table) zoom the map when clicked */
  function zoomRows(map) {
    Array.prototype.forEach.call(document.querySelectorAll("[data-zoom]"), function (row) {
      function go() {
        var b;
        try { b = JSON.parse(row.getAttribute("data-zoom")); } catch (err) { return; }
        map.fitBounds(b, {padding: [40, 40], maxZoom: 17});
        Array.prototype.forEach.call(document.querySelectorAll("[data-zoom].active"), function (r) {
          r.classList.remove("active");
        });
        row.classList.add("active");
      }
      row.addEventListener("click", go);
      row.addEventListener("keydown", function (ev) { if (ev.key === "Enter") go(); });
    });
  }

  window.coverageMapPage = {
    /* map: the folium L.map; pairs: [[legend block id, layer], ...] */
    init: function (map, pairs) {
      if (map.attributionControl) map.attributionControl.setPrefix("Leaflet");
      legends(map, pairs);
      zoomRows(map);
      window.coverageMap = map;
    }
  };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", initTables);
  else initTables();
})();
