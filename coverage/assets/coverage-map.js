/* coverage gap maps: page behaviour (this project's own code, no dependencies but Leaflet).
 *
 * The page data sits in <script type="application/json" id="coverage-data"> (never executed).
 * Every municipal string (names, addresses, standards text) reaches the DOM through textContent
 * only: popups, tooltips and legends are built as DOM nodes, never from HTML strings.
 */
(function () {
  "use strict";

  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined && text !== null) n.textContent = String(text);
    return n;
  }

  /* popup/tooltip body: a title and a 2-column table of label -> value, as text */
  function infoNode(props, title, fields, href, hrefText) {
    var box = el("div", "cov-popup");
    if (title !== undefined && title !== null && title !== "") box.appendChild(el("div", "cov-popup-title", title));
    var t = el("table");
    (fields || []).forEach(function (f) {
      var v = props[f.key];
      if (v === undefined || v === null || v === "") v = "—";
      var tr = el("tr");
      tr.appendChild(el("th", null, f.label));
      tr.appendChild(el("td", null, v));
      t.appendChild(tr);
    });
    box.appendChild(t);
    if (href) {
      var a = el("a", "cov-link", hrefText || href);
      a.setAttribute("href", href);
      box.appendChild(a);
    }
    return box;
  }

  function legendNode(lg) {
    var box = el("div", "cov-legend-block");
    box.appendChild(el("div", "cov-legend-title", lg.title));
    lg.items.forEach(function (it) {
      var row = el("div", "cov-legend-row");
      var sw = el("span", "cov-swatch" + (it.shape === "circle" ? " cov-swatch-circle" : ""));
      sw.style.background = it.color;
      row.appendChild(sw);
      row.appendChild(el("span", null, it.label));
      box.appendChild(row);
    });
    return box;
  }

  function makeLayer(o) {
    var base = o.style || {};
    return L.geoJSON(o.geojson, {
      style: function (f) {
        var s = Object.assign({}, base);
        if (f.properties && f.properties._color) s.fillColor = f.properties._color;
        return s;
      },
      pointToLayer: function (f, ll) {
        var s = Object.assign({radius: 7, weight: 1.5, color: "#222", fillOpacity: 0.95}, base);
        if (f.properties && f.properties._color) s.fillColor = f.properties._color;
        return L.circleMarker(ll, s);
      },
      onEachFeature: function (f, layer) {
        var p = f.properties || {};
        if (o.popup) {
          layer.bindPopup(function () {
            return infoNode(p, o.popup.title_key ? p[o.popup.title_key] : o.name, o.popup.fields,
                            o.popup.href_key ? p[o.popup.href_key] : null, o.popup.href_text);
          }, {maxWidth: 360});
        }
        if (o.tooltip_key && p[o.tooltip_key] !== undefined) {
          layer.bindTooltip(el("span", null, p[o.tooltip_key]), {sticky: true});
        }
      }
    });
  }

  function initMap(data) {
    var map = L.map("map", {preferCanvas: false, zoomSnap: 0.25});
    map.attributionControl.setPrefix("Leaflet");
    (data.tiles || []).forEach(function (t) {
      L.tileLayer(t.url, {subdomains: t.subdomains || "abc", attribution: t.attribution || "",
                          maxZoom: t.max_zoom || 18}).addTo(map);
    });
    var base = {}, overlays = {}, legends = {}, firstBase = null;
    (data.base_layers || []).forEach(function (o) {
      var lyr = makeLayer(o);
      base[o.name] = lyr;
      legends[o.name] = o.legend;
      if (!firstBase) { firstBase = lyr; lyr.addTo(map); }
    });
    (data.overlays || []).forEach(function (o) {
      var lyr = makeLayer(o);
      overlays[o.name] = lyr;
      if (o.legend) legends[o.name] = o.legend;
      if (o.checked !== false) lyr.addTo(map);
    });
    L.control.layers(base, overlays, {collapsed: false, position: "topright"}).addTo(map);
    L.control.scale({imperial: false, metric: true, position: "bottomleft"}).addTo(map);

    var legendCtl = L.control({position: "bottomright"});
    var legendDiv = el("div", "cov-legend leaflet-control");
    legendCtl.onAdd = function () { return legendDiv; };
    legendCtl.addTo(map);
    function redrawLegend() {
      while (legendDiv.firstChild) legendDiv.removeChild(legendDiv.firstChild);
      Object.keys(legends).forEach(function (name) {
        var lyr = base[name] || overlays[name];
        if (legends[name] && lyr && map.hasLayer(lyr)) legendDiv.appendChild(legendNode(legends[name]));
      });
    }
    map.on("baselayerchange overlayadd overlayremove", redrawLegend);
    redrawLegend();

    if (data.bounds) map.fitBounds(data.bounds, {padding: [10, 10]});
    window.coverageMap = map;
    return map;
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

  document.addEventListener("DOMContentLoaded", function () {
    var node = document.getElementById("coverage-data");
    if (node) initMap(JSON.parse(node.textContent));
    initTables();
  });
})();
