"""OGC WMTS 1.0.0 GetCapabilities (RESTful), so QGIS and ArcGIS can add orbis as a layer.

The TileMatrixSet definitions are written from morecantile's models (scale denominators, top-left
corners, matrix sizes), never re-derived by hand.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from generator.world import World

from . import tms


def _matrix_set(tms_id: str, max_zoom: int) -> str:
    m = tms.get(tms_id)
    crs = (
        "urn:ogc:def:crs:EPSG::3857"
        if tms_id == "WebMercatorQuad"
        else "urn:ogc:def:crs:OGC:1.3:CRS84"
    )
    parts = [
        f"<TileMatrixSet><ows:Identifier>{tms_id}</ows:Identifier>",
        f"<ows:SupportedCRS>{crs}</ows:SupportedCRS>",
    ]
    for z in range(0, min(max_zoom, m.maxzoom) + 1):
        mat = m.matrix(z)
        ox, oy = mat.pointOfOrigin
        corner = f"{ox} {oy}"  # x y for EPSG:3857, lon lat for CRS84
        parts.append(
            "<TileMatrix>"
            f"<ows:Identifier>{mat.id}</ows:Identifier>"
            f"<ScaleDenominator>{mat.scaleDenominator!r}</ScaleDenominator>"
            f"<TopLeftCorner>{corner}</TopLeftCorner>"
            f"<TileWidth>{mat.tileWidth}</TileWidth><TileHeight>{mat.tileHeight}</TileHeight>"
            f"<MatrixWidth>{mat.matrixWidth}</MatrixWidth>"
            f"<MatrixHeight>{mat.matrixHeight}</MatrixHeight>"
            "</TileMatrix>"
        )
    parts.append("</TileMatrixSet>")
    return "".join(parts)


_LAYER_ABSTRACT = {
    "elevation": "elevation in metres, Terrarium RGB: height = R*256 + G + B/256 - 32768",
    "landcover": "land-cover class ids as palette indices (legend in the layer's TileJSON)",
    "water": "water kinds as palette indices: 0 land (transparent), 1 ocean, 2 lake, 3 river",
    "layout": "layout class ids (roads, fields, buildings) as palette indices (legend in TileJSON)",
}


def _geography_layers(base_url: str, name: str, world: World) -> str:
    """Return one Layer per served geography layer (WebMercatorQuad only, PNG)."""
    from .layers import SERVED

    if world.geography is None:
        return ""
    parts = []
    for layer in SERVED:
        template = (
            f"{base_url}/tiles/{name}/layers/{layer}/{{TileMatrix}}/{{TileCol}}/{{TileRow}}.png"
        )
        parts.append(
            "<Layer>"
            f"<ows:Title>{escape(world.config.title or name)}: {layer}</ows:Title>"
            f"<ows:Abstract>{escape(_LAYER_ABSTRACT[layer])}</ows:Abstract>"
            f"<ows:Identifier>{escape(name)}-{layer}</ows:Identifier>"
            "<ows:WGS84BoundingBox><ows:LowerCorner>-180 -85.051128779806</ows:LowerCorner>"
            "<ows:UpperCorner>180 85.051128779806</ows:UpperCorner></ows:WGS84BoundingBox>"
            '<Style isDefault="true"><ows:Identifier>default</ows:Identifier></Style>'
            "<Format>image/png</Format>"
            "<TileMatrixSetLink><TileMatrixSet>WebMercatorQuad</TileMatrixSet></TileMatrixSetLink>"
            f'<ResourceURL format="image/png" resourceType="tile" template="{escape(template)}"/>'
            "</Layer>"
        )
    return "".join(parts)


def capabilities(base_url: str, name: str, world: World) -> str:
    """Return the WMTS capabilities document of one world (both TileMatrixSets), with one more
    Layer per geography layer (``NAME-elevation``, ``NAME-landcover``, ``NAME-water``)."""
    c = world.config
    title = escape(c.title or name)
    template = (
        f"{base_url}/tiles/{name}/{{TileMatrixSet}}/{{TileMatrix}}/{{TileCol}}/{{TileRow}}.png"
    )
    links = "".join(
        f"<TileMatrixSetLink><TileMatrixSet>{t}</TileMatrixSet></TileMatrixSetLink>"
        for t in tms.SUPPORTED
    )
    resource = (
        f'<ResourceURL format="image/png" resourceType="tile" template="{escape(template)}"/>'
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Capabilities xmlns="http://www.opengis.net/wmts/1.0" '
        'xmlns:ows="http://www.opengis.net/ows/1.1" xmlns:xlink="http://www.w3.org/1999/xlink" '
        'version="1.0.0">'
        f"<ows:ServiceIdentification><ows:Title>orbis: {title}</ows:Title>"
        "<ows:ServiceType>OGC WMTS</ows:ServiceType>"
        "<ows:ServiceTypeVersion>1.0.0</ows:ServiceTypeVersion></ows:ServiceIdentification>"
        "<Contents><Layer>"
        f"<ows:Title>{title}</ows:Title><ows:Identifier>{escape(name)}</ows:Identifier>"
        "<ows:WGS84BoundingBox><ows:LowerCorner>-180 -85.051128779806</ows:LowerCorner>"
        "<ows:UpperCorner>180 85.051128779806</ows:UpperCorner></ows:WGS84BoundingBox>"
        '<Style isDefault="true"><ows:Identifier>default</ows:Identifier></Style>'
        "<Format>image/png</Format>"
        + links
        + resource
        + "</Layer>"
        + _geography_layers(base_url, name, world)
        + "".join(_matrix_set(t, c.max_zoom) for t in tms.SUPPORTED)
        + "</Contents>"
        f'<ServiceMetadataURL xlink:href="{escape(base_url)}/tiles/{escape(name)}'
        '/WMTSCapabilities.xml"/>'
        "</Capabilities>"
    )
