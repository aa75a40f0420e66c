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
 * The URL hash is a permalink, #WORLD/ZOOM/LAT/LON (e.g. #earth/6/46.5/10.0);
 * the older #ZOOM/LAT/LON form is still accepted (it shows the default world).
 * While tiles of the world on show are being generated or loaded, a badge
 * ("generating N tiles…") counts them; it hides when none are pending.
 * Small links (bottom right) lead to the OpenLayers example page, to
 * copy-paste snippets for other clients and to the 3D view (/3d).
 *
 * Geography overlays: for a world whose /worlds entry lists `layers`, the
 * layers control gets overlays for water and land cover (the paletted PNG
 * tiles of /tiles/WORLD/layers/NAME/…) and for elevation, drawn as a
 * hillshade in the browser from the Terrarium tiles (height = R*256 + G +
 * B/256 - 32768 m). An "overlays" slider sets their opacity. Switching worlds
 * moves the overlays that are on to the new world's layers.
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
  var currentWorld = null; // the /worlds entry of the layer on show

  // ---- permalink: #world/zoom/lat/lon (or the older #zoom/lat/lon) ----------

  var NUM = '(-?\\d+(?:\\.\\d+)?)';
  var HASH_RE = new RegExp('^#(?:([A-Za-z0-9_.~-]+)/)?' + NUM + '/' + NUM + '/' + NUM + '$');

  // A view in the URL hash overrides the start view and follows the map.
  function viewFromHash(hash) {
    var m = HASH_RE.exec(hash);
    if (!m) return null;
    var view = { world: m[1] ? decodeURIComponent(m[1]) : null, zoom: +m[2],
                 center: [+m[3], +m[4]] };
    if (!isFinite(view.zoom) || !isFinite(view.center[0]) || !isFinite(view.center[1])) return null;
    return view;
  }
  var hashView = viewFromHash(location.hash);
  var requestedWorld = hashView ? hashView.world : null; // until /worlds has loaded
  var map = L.map('map', { worldCopyJump: true }).setView(
    hashView ? hashView.center : START_CENTER, hashView ? hashView.zoom : START_ZOOM);

  var lastHash = null; // the hash this page wrote last (to tell it from the user's edits)
  function writeHash() {
    var c = map.getCenter();
    var world = currentWorld ? currentWorld.name : requestedWorld;
    var hash = '#' + (world ? encodeURIComponent(world) + '/' : '') + map.getZoom() + '/' +
               c.lat.toFixed(4) + '/' + c.lng.toFixed(4);
    updateLinks(hash, world);
    if (hash === location.hash) return;
    lastHash = hash;
    history.replaceState(null, '', hash);
  }

  // The links to the other pages carry the view (OpenLayers) and the world (snippets).
  function updateLinks(hash, world) {
    var ol = document.getElementById('orbis-link-ol');
    var terrain = document.getElementById('orbis-link-3d');
    if (terrain) terrain.setAttribute('href', '/3d' + hash);
    var snippets = document.getElementById('orbis-link-snippets');
    if (ol) ol.setAttribute('href', '/static/openlayers.html' + hash);
    if (snippets && world) {
      snippets.setAttribute('href', '/static/snippets.html#' + encodeURIComponent(world));
    }
  }
  map.on('moveend', writeHash);

  L.control.scale({ metric: true, imperial: true }).addTo(map);

  // ---- info box: zoom, ground resolution, cursor position -----------------

  var info = L.control({ position: 'bottomleft' });
  var zoomLine, cursorLine;

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

  // ---- "generating N tiles…" badge ---------------------------------------------
  //
  // Tiles of the layer on show that were asked for and have neither loaded nor
  // failed, kept per layer and keyed by tile address: a tile Leaflet drops while
  // still loading (tileabort after a zoom, tileunload when panned out of view)
  // leaves the count although it fires neither tileload nor tileerror. Only
  // layers on the map count, so switching worlds drops the old world's tiles.

  var badge = document.getElementById('orbis-loading');

  function pendingTiles() {
    var n = 0;
    map.eachLayer(function (layer) {
      if (layer.orbisPending) n += Object.keys(layer.orbisPending).length;
    });
    return n;
  }

  function showPending() {
    if (!badge) return;
    var n = pendingTiles();
    badge.textContent = 'generating ' + n + (n === 1 ? ' tile…' : ' tiles…');
    badge.hidden = n === 0;
  }

  function tileKey(coords) {
    return coords.z + '/' + coords.x + '/' + coords.y;
  }

  function trackTiles(layer) {
    layer.orbisPending = {};
    layer.on('tileloadstart', function (e) {
      if (e.coords) layer.orbisPending[tileKey(e.coords)] = true;
      showPending();
    });
    layer.on('tileload tileerror tileabort tileunload', function (e) {
      if (e.coords) delete layer.orbisPending[tileKey(e.coords)];
      showPending();
    });
    layer.on('load remove', function () { // 'load': every tile in view has loaded
      layer.orbisPending = {};
      showPending();
    });
  }

  // ---- links to the other pages ---------------------------------------------------

  var links = L.control({ position: 'bottomright' });
  links.onAdd = function () {
    var div = L.DomUtil.create('div', 'leaflet-control orbis-links');
    div.innerHTML = '<a href="/static/openlayers.html" id="orbis-link-ol">OpenLayers example</a>' +
                    ' · <a href="/static/snippets.html" id="orbis-link-snippets">snippets</a>' +
                    ' · <a href="/3d" id="orbis-link-3d">3D</a>';
    L.DomEvent.disableClickPropagation(div);
    return div;
  };
  links.addTo(map);

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
    var layer = L.tileLayer(world.tile_url, {
      tileSize: 256,
      minZoom: world.min_zoom != null ? world.min_zoom : 0,
      maxZoom: world.max_zoom,
      maxNativeZoom: world.max_zoom,
      noWrap: false, // the world repeats east-west
      attribution: world.attribution || ''
    });
    trackTiles(layer);
    return layer;
  }

  var layersByName = {};
  var layersControl = null;

  // ---- geography overlays: water, land cover, elevation as a hillshade ----------

  var OVERLAY_TITLES = { water: 'water', landcover: 'land cover', layout: 'layout (fields, roads, towns)',
                        elevation: 'elevation (hillshade)' };
  var overlayOpacity = 0.7;
  var overlays = {}; // layer name -> Leaflet layer of the world on show

  // Hillshade of Terrarium tiles (ESRI's formula: sun from 315°, 45° up). Low zooms have
  // pixels kilometres wide, so the relief is exaggerated there to stay visible.
  var Hillshade = L.GridLayer.extend({
    createTile: function (coords, done) {
      var tile = document.createElement('canvas');
      var size = this.getTileSize();
      tile.width = size.x;
      tile.height = size.y;
      var img = new Image();
      var url = L.Util.template(this._url, coords);
      img.onload = function () {
        var w = size.x, h = size.y;
        var ctx = tile.getContext('2d', { willReadFrequently: true });
        ctx.drawImage(img, 0, 0);
        var px = ctx.getImageData(0, 0, w, h);
        var d = px.data, z = new Float32Array(w * h), i;
        for (i = 0; i < w * h; i++) z[i] = d[4 * i] * 256 + d[4 * i + 1] + d[4 * i + 2] / 256 - 32768;
        var n = Math.pow(2, coords.z);
        var latRad = Math.atan(Math.sinh(Math.PI * (1 - 2 * (coords.y + 0.5) / n)));
        var mpp = 40075016.686 * Math.cos(latRad) / (w * n);
        var ex = Math.max(1, Math.pow(2, (12 - coords.z) / 2));
        var zen = Math.PI / 4, azMath = (360 - 315 + 90) * Math.PI / 180; // ESRI's azimuth_math
        for (var y = 0; y < h; y++) {
          for (var x = 0; x < w; x++) {
            var xl = Math.max(x - 1, 0), xr = Math.min(x + 1, w - 1);
            var yu = Math.max(y - 1, 0), yd = Math.min(y + 1, h - 1);
            var dzdx = (z[y * w + xr] - z[y * w + xl]) / ((xr - xl) * mpp) * ex;
            var dzdy = (z[yd * w + x] - z[yu * w + x]) / ((yd - yu) * mpp) * ex;
            var slope = Math.atan(Math.sqrt(dzdx * dzdx + dzdy * dzdy));
            var aspect = Math.atan2(dzdy, -dzdx);
            var shade = Math.cos(zen) * Math.cos(slope) +
                        Math.sin(zen) * Math.sin(slope) * Math.cos(azMath - aspect);
            var v = Math.max(0, Math.min(255, Math.round(255 * shade)));
            i = 4 * (y * w + x);
            d[i] = d[i + 1] = d[i + 2] = v;
            d[i + 3] = 255;
          }
        }
        ctx.putImageData(px, 0, 0);
        done(null, tile);
      };
      img.onerror = function () { done(new Error('elevation tile failed: ' + url), tile); };
      img.src = url;
      return tile;
    }
  });

  function makeOverlay(world, layer) {
    var opts = { tileSize: 256, maxZoom: world.max_zoom, maxNativeZoom: world.max_zoom,
                 opacity: overlayOpacity, zIndex: 10 };
    var overlay = layer.name === 'elevation' ? new Hillshade(opts) : L.tileLayer(layer.tile_url, opts);
    overlay._url = layer.tile_url;
    overlay.orbisLayer = layer.name;
    return overlay;
  }

  // Replace the overlays of the previous world by those of `world`, keeping on what was on.
  function setOverlays(world) {
    if (!layersControl) return;
    var on = {};
    Object.keys(overlays).forEach(function (name) {
      on[name] = map.hasLayer(overlays[name]);
      map.removeLayer(overlays[name]);
      layersControl.removeLayer(overlays[name]);
    });
    overlays = {};
    (world && world.layers ? world.layers : []).forEach(function (layer) {
      if (!OVERLAY_TITLES[layer.name]) return;
      var overlay = overlays[layer.name] = makeOverlay(world, layer);
      layersControl.addOverlay(overlay, OVERLAY_TITLES[layer.name]);
      if (on[layer.name]) overlay.addTo(map);
    });
    opacityControl.getContainer().hidden = Object.keys(overlays).length === 0;
  }

  var opacityControl = L.control({ position: 'topright' });
  opacityControl.onAdd = function () {
    var div = L.DomUtil.create('div', 'leaflet-control orbis-opacity');
    div.innerHTML = '<label>overlays <input id="orbis-overlay-opacity" type="range" ' +
                    'min="0" max="1" step="0.05" value="' + overlayOpacity + '"></label>';
    div.style.cssText = 'background: rgba(255,255,255,0.85); padding: 2px 8px; ' +
                        'border-radius: 4px; font: 12px system-ui, sans-serif;';
    L.DomEvent.disableClickPropagation(div);
    div.querySelector('input').addEventListener('input', function (e) {
      overlayOpacity = +e.target.value;
      Object.keys(overlays).forEach(function (n) { overlays[n].setOpacity(overlayOpacity); });
    });
    return div;
  };

  function showWorld(name) {
    var layer = layersByName[name];
    if (!layer || map.hasLayer(layer)) return;
    Object.keys(layersByName).forEach(function (n) {
      if (n !== name && map.hasLayer(layersByName[n])) map.removeLayer(layersByName[n]);
    });
    map.addLayer(layer); // the layers control hears of it and fires baselayerchange
  }

  function addWorlds(worlds) {
    if (!Array.isArray(worlds) || worlds.length === 0) {
      throw new Error('the server returned no worlds');
    }
    var baseLayers = {};
    var initial = null;
    var requested = null;
    worlds.forEach(function (world) {
      if (!world || !world.tile_url) return;
      var layer = makeLayer(world);
      layer.orbisWorld = world;
      layersByName[world.name] = layer;
      baseLayers[escapeHtml(world.title || world.name)] = layer;
      if (!initial || world.name === DEFAULT_WORLD) initial = layer;
      if (world.name === requestedWorld) requested = layer;
    });
    if (!initial) throw new Error('no world has a tile_url');
    initial = requested || initial;
    map.on('baselayerchange', function (e) {
      currentWorld = e.layer.orbisWorld || null;
      setOverlays(currentWorld);
      updateZoomLine();
      writeHash();
    });
    currentWorld = initial.orbisWorld;
    initial.addTo(map);
    updateZoomLine();
    writeHash(); // the permalink names the world from now on
    layersControl = L.control.layers(baseLayers, null, { collapsed: false, position: 'topright' });
    layersControl.addTo(map);
    opacityControl.addTo(map);
    setOverlays(currentWorld);
  }

  // A hash edited by hand (or a pasted permalink) moves the map and switches the world.
  window.addEventListener('hashchange', function () {
    if (location.hash === lastHash) return;
    var view = viewFromHash(location.hash);
    if (!view) return;
    if (view.world) {
      requestedWorld = view.world;
      showWorld(view.world);
    }
    map.setView(view.center, view.zoom);
  });

  // For tests and the browser console: the map and the pending-tile count.
  window.orbisViewer = {
    map: map,
    layers: layersByName,
    overlays: function () { return overlays; },
    world: function () { return currentWorld ? currentWorld.name : null; },
    pendingTiles: pendingTiles
  };

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
