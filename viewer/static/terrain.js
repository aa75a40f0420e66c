/*
 * orbis in 3D: a world's imagery draped over its elevation layer in MapLibre
 * GL JS (vendored, the global `maplibregl`).
 *
 * From GET /worlds it takes the world's imagery tile_url and the TileJSON of
 * its `elevation` layer (Terrarium-encoded PNG: height = R*256 + G + B/256 -
 * 32768 m, which MapLibre's raster-dem source decodes with
 * encoding: "terrarium"). Two raster-dem sources read the same tiles, one for
 * the terrain mesh and one for the hillshade layer (MapLibre advises separate
 * sources). The panel picks the world and sets the exaggeration, pitch and
 * bearing; the navigation control (top left) drags pitch and bearing too.
 *
 * The URL hash is a permalink: #WORLD/ZOOM/LAT/LON/BEARING/PITCH (the 2D
 * viewer's #WORLD/ZOOM/LAT/LON opens here with the default pitch). A world
 * without an elevation layer ([geography] kind = "none") is shown flat, with
 * a note.
 */
(function () {
  'use strict';

  function showError(message) {
    var box = document.getElementById('orbis-error');
    box.textContent = message;
    box.hidden = false;
  }

  if (typeof maplibregl === 'undefined') {
    showError('Could not load the map: /static/vendor/maplibre-gl/maplibre-gl.js did not load.');
    return;
  }

  var NUM = '(-?\\d+(?:\\.\\d+)?)';
  var HASH_RE = new RegExp('^#([A-Za-z0-9_.~-]+)/' + NUM + '/' + NUM + '/' + NUM +
                           '(?:/' + NUM + '/' + NUM + ')?$');
  var m = HASH_RE.exec(location.hash);
  var start = m ? { world: m[1], zoom: +m[2], lat: +m[3], lon: +m[4],
                    bearing: m[5] != null ? +m[5] : 0, pitch: m[6] != null ? +m[6] : 60 }
                : null;

  var worlds = {};
  var current = null; // the /worlds entry on show
  var exaggeration = 1.5;
  var demRequests = 0; // elevation tiles MapLibre asked for (for tests and the console)

  var el = function (id) { return document.getElementById(id); };
  var select = el('orbis-3d-world');

  function elevationOf(world) {
    return (world.layers || []).filter(function (l) { return l.name === 'elevation'; })[0] || null;
  }

  function absolute(url) { // not new URL(): it would percent-encode the {z}/{x}/{y} braces
    return url.charAt(0) === '/' ? location.origin + url : url;
  }

  function styleFor(world) {
    var elevation = elevationOf(world);
    var style = {
      version: 8,
      sources: {
        imagery: {
          type: 'raster',
          tiles: [absolute(world.tile_url)],
          tileSize: 256,
          minzoom: world.min_zoom || 0,
          maxzoom: world.max_zoom,
          attribution: world.attribution || ''
        }
      },
      layers: [
        { id: 'background', type: 'background', paint: { 'background-color': '#0b1a2a' } },
        { id: 'imagery', type: 'raster', source: 'imagery' }
      ]
    };
    if (elevation) {
      var dem = { type: 'raster-dem', url: absolute(elevation.tilejson), tileSize: 256,
                  encoding: 'terrarium' };
      style.sources['terrain-dem'] = dem;
      style.sources['hillshade-dem'] = Object.assign({}, dem);
      style.layers.push({
        id: 'hillshade', type: 'hillshade', source: 'hillshade-dem',
        layout: { visibility: el('orbis-3d-hillshade').checked ? 'visible' : 'none' },
        paint: { 'hillshade-exaggeration': 0.35, 'hillshade-shadow-color': '#1b2433' }
      });
      style.terrain = { source: 'terrain-dem', exaggeration: exaggeration };
    }
    return style;
  }

  var map = new maplibregl.Map({
    container: 'map',
    style: { version: 8, sources: {}, layers: [] },
    center: start ? [start.lon, start.lat] : [10, 46],
    zoom: start ? start.zoom : 4,
    pitch: start ? start.pitch : 60,
    bearing: start ? start.bearing : 0,
    maxPitch: 85,
    attributionControl: { compact: false },
    transformRequest: function (url) {
      if (url.indexOf('/layers/elevation/') >= 0 && /\.png(\?|$)/.test(url)) demRequests++;
      return { url: url };
    }
  });
  map.addControl(new maplibregl.NavigationControl({ visualizePitch: true }), 'top-left');
  map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-left');

  // ---- "generating tiles…": shown until every tile in view (imagery, elevation) has loaded ----
  var badge = el('orbis-loading');
  function showPending() {
    var busy = !!map.getStyle() && !map.areTilesLoaded();
    badge.textContent = 'generating tiles…';
    badge.hidden = !busy;
  }
  map.on('sourcedata', showPending);
  map.on('idle', showPending);

  // ---- permalink -------------------------------------------------------------
  function viewHash() {
    var c = map.getCenter();
    return '#' + encodeURIComponent(current ? current.name : 'earth') + '/' +
           map.getZoom().toFixed(2) + '/' + c.lat.toFixed(4) + '/' + c.lng.toFixed(4) + '/' +
           Math.round(map.getBearing()) + '/' + Math.round(map.getPitch());
  }
  function syncPanel() {
    el('orbis-3d-pitch').value = Math.round(map.getPitch());
    el('orbis-3d-pitch-value').textContent = Math.round(map.getPitch());
    el('orbis-3d-bearing').value = Math.round(map.getBearing());
    el('orbis-3d-bearing-value').textContent = Math.round(map.getBearing());
    var c = map.getCenter();
    el('orbis-3d-link-2d').setAttribute('href', '/#' + encodeURIComponent(current ? current.name : 'earth') +
      '/' + Math.round(map.getZoom()) + '/' + c.lat.toFixed(4) + '/' + c.lng.toFixed(4));
  }
  map.on('moveend', function () {
    syncPanel();
    history.replaceState(null, '', viewHash());
  });

  // ---- the panel -------------------------------------------------------------
  el('orbis-3d-exaggeration').addEventListener('input', function (e) {
    exaggeration = +e.target.value;
    el('orbis-3d-exaggeration-value').textContent = exaggeration;
    if (map.getTerrain()) map.setTerrain({ source: 'terrain-dem', exaggeration: exaggeration });
  });
  el('orbis-3d-pitch').addEventListener('input', function (e) {
    map.setPitch(+e.target.value);
  });
  el('orbis-3d-bearing').addEventListener('input', function (e) {
    map.setBearing(+e.target.value);
  });
  el('orbis-3d-hillshade').addEventListener('change', function (e) {
    if (map.getLayer('hillshade')) {
      map.setLayoutProperty('hillshade', 'visibility', e.target.checked ? 'visible' : 'none');
    }
  });
  select.addEventListener('change', function () { showWorld(select.value, false); });

  function showWorld(name, keepView) {
    var world = worlds[name];
    if (!world) return;
    current = world;
    select.value = name;
    map.setStyle(styleFor(world), { diff: false }); // a new world: every source is new
    if (!elevationOf(world)) {
      showError('World ' + name + ' has no elevation layer ([geography] kind = "none"): ' +
                'shown flat.');
    } else {
      el('orbis-error').hidden = true;
    }
    if (!keepView && world.center) {
      map.jumpTo({ center: [world.center[1], world.center[0]], zoom: world.center[2] });
    }
    syncPanel();
    history.replaceState(null, '', viewHash());
  }

  window.orbis3d = {
    map: map,
    world: function () { return current ? current.name : null; },
    demRequests: function () { return demRequests; },
    terrainLoaded: function () {
      return !!(map.getTerrain() && map.getSource('terrain-dem') && map.isSourceLoaded('terrain-dem'));
    },
    elevationAt: function (lon, lat) { return map.queryTerrainElevation([lon, lat]); }
  };

  fetch('/worlds', { headers: { Accept: 'application/json' } })
    .then(function (resp) {
      if (!resp.ok) throw new Error('GET /worlds: HTTP ' + resp.status);
      return resp.json();
    })
    .then(function (items) {
      items.forEach(function (w) {
        worlds[w.name] = w;
        var opt = document.createElement('option');
        opt.value = w.name;
        opt.textContent = w.title || w.name;
        select.appendChild(opt);
      });
      var name = start && worlds[start.world] ? start.world : (worlds.earth ? 'earth' : items[0].name);
      showWorld(name, !!start);
    })
    .catch(function (err) {
      showError('The list of worlds (/worlds) could not be loaded: ' + (err && err.message ? err.message : err));
    });
}());
