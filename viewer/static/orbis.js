/*
 * orbis viewer: a full-window Leaflet map of the worlds served by the orbis
 * tile server.
 *
 * On load it fetches GET /worlds (a JSON list of worlds, each with a name,
 * title, zoom range, attribution and an XYZ tile_url template) and makes one
 * tile layer per world, switchable in a layers control; "earth" is shown
 * first when present. A scale bar and an info box show the zoom level, the
 * ground resolution at the map centre (m/px = 156543.03392 * cos(lat) / 2^z)
 * and the coordinates under the cursor. If /worlds cannot be loaded, an error
 * message is shown over the (empty) map instead.
 *
 * Plain JavaScript, no build step; needs only the vendored Leaflet.
 */
(function () {
  'use strict';

  if (typeof L === 'undefined') { // leaflet.js missing or broken
    var box = document.getElementById('orbis-error');
    box.textContent = 'Could not load the map: /static/vendor/leaflet/leaflet.js did not load.';
    box.hidden = false;
    return;
  }

  var START_CENTER = [48, 10]; // Europe
  var START_ZOOM = 4;
  var DEFAULT_WORLD = 'earth';
  var EARTH_M_PER_PX_Z0 = 156543.03392; // equatorial metres per pixel at z0 (256 px tiles)

  // A view in the URL hash (#zoom/lat/lon) overrides the start view and follows the map.
  function viewFromHash() {
    var m = /^#(\d+(?:\.\d+)?)\/(-?\d+(?:\.\d+)?)\/(-?\d+(?:\.\d+)?)$/.exec(location.hash);
    return m ? { zoom: +m[1], center: [+m[2], +m[3]] } : null;
  }
  var hashView = viewFromHash();
  var map = L.map('map', { worldCopyJump: true }).setView(
    hashView ? hashView.center : START_CENTER, hashView ? hashView.zoom : START_ZOOM);
  map.on('moveend', function () {
    var c = map.getCenter();
    history.replaceState(null, '', '#' + map.getZoom() + '/' + c.lat.toFixed(4) + '/' +
      c.lng.toFixed(4));
  });

  L.control.scale({ metric: true, imperial: true }).addTo(map);

  // ---- info box: zoom, ground resolution, cursor position -----------------

  var info = L.control({ position: 'bottomleft' });
  var zoomLine, cursorLine;
  var currentWorld = null; // the /worlds entry of the layer on show

  info.onAdd = function () {
    var div = L.DomUtil.create('div', 'leaflet-control orbis-info');
    zoomLine = L.DomUtil.create('div', '', div);
    cursorLine = L.DomUtil.create('div', '', div);
    L.DomEvent.disableClickPropagation(div);
    return div;
  };
  info.addTo(map);

  function formatResolution(metres) {
    // 3 significant digits, in a unit that keeps the number readable.
    function fmt(x, unit) { return Number(x.toPrecision(3)) + ' ' + unit + '/px'; }
    if (metres >= 1000) return fmt(metres / 1000, 'km');
    if (metres >= 1) return fmt(metres, 'm');
    if (metres >= 0.01) return fmt(metres * 100, 'cm');
    return fmt(metres * 1000, 'mm');
  }

  function formatZoom(z) {
    return String(Math.round(z * 100) / 100); // whole zooms stay "7"
  }

  function formatLatLng(latlng, zoom) {
    // Enough decimals to resolve about one screen pixel at this zoom.
    var digits = Math.ceil(Math.log10((256 * Math.pow(2, zoom)) / 360));
    digits = Math.min(Math.max(digits, 1), 7);
    var ll = latlng.wrap();
    return Math.abs(ll.lat).toFixed(digits) + '° ' + (ll.lat < 0 ? 'S' : 'N') + ', ' +
           Math.abs(ll.lng).toFixed(digits) + '° ' + (ll.lng < 0 ? 'W' : 'E');
  }

  function updateZoomLine() {
    var z = map.getZoom();
    var lat = map.getCenter().lat;
    var mPerPx = EARTH_M_PER_PX_Z0 * Math.cos(lat * Math.PI / 180) / Math.pow(2, z);
    var finest = currentWorld && currentWorld.trained_mpp ? currentWorld.trained_mpp[0] : 0;
    zoomLine.textContent = 'z ' + formatZoom(z) + ' · ' + formatResolution(mPerPx) +
                           ' at ' + lat.toFixed(1) + '°' +
                           (mPerPx < finest / 2 ? ' · beyond the model\'s trained range' : '');
  }

  function clearCursor() {
    cursorLine.textContent = 'cursor: –';
  }

  map.on('zoomend moveend', updateZoomLine);
  map.on('mousemove', function (e) {
    cursorLine.textContent = formatLatLng(e.latlng, map.getZoom());
  });
  map.on('mouseout', clearCursor);
  updateZoomLine();
  clearCursor();

  // ---- worlds ---------------------------------------------------------------

  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }

  function showError(message, detail) {
    var box = document.getElementById('orbis-error');
    box.innerHTML = '<strong>Could not load the map.</strong><br>' + escapeHtml(message) +
                    (detail ? '<br><code>' + escapeHtml(detail) + '</code>' : '');
    box.hidden = false;
  }

  function makeLayer(world) {
    return L.tileLayer(world.tile_url, {
      tileSize: 256,
      minZoom: world.min_zoom != null ? world.min_zoom : 0,
      maxZoom: world.max_zoom,
      maxNativeZoom: world.max_zoom,
      noWrap: false, // the world repeats east-west
      attribution: world.attribution || ''
    });
  }

  function addWorlds(worlds) {
    if (!Array.isArray(worlds) || worlds.length === 0) {
      throw new Error('the server returned no worlds');
    }
    var baseLayers = {};
    var initial = null;
    worlds.forEach(function (world) {
      if (!world || !world.tile_url) return;
      var layer = makeLayer(world);
      layer.orbisWorld = world;
      baseLayers[escapeHtml(world.title || world.name)] = layer;
      if (!initial || world.name === DEFAULT_WORLD) initial = layer;
    });
    if (!initial) throw new Error('no world has a tile_url');
    map.on('baselayerchange', function (e) {
      currentWorld = e.layer.orbisWorld || null;
      updateZoomLine();
    });
    currentWorld = initial.orbisWorld;
    initial.addTo(map);
    updateZoomLine();
    L.control.layers(baseLayers, null, { collapsed: false, position: 'topright' }).addTo(map);
  }

  fetch('/worlds', { headers: { Accept: 'application/json' } })
    .then(function (resp) {
      if (!resp.ok) throw new Error(('GET /worlds: HTTP ' + resp.status + ' ' + resp.statusText).trim());
      return resp.json();
    })
    .then(addWorlds)
    .catch(function (err) {
      showError('The list of worlds (/worlds) could not be loaded from the tile server.',
                err && err.message ? err.message : String(err));
    });
}());
