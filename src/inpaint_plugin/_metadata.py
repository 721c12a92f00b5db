"""Image metadata kept from input to output: axes, calibration, ImageJ metadata, OME-XML, OME-Zarr multiscales.

:func:`inpaint_plugin.read_image` with ``with_metadata=True`` returns an :class:`ImageMetadata`
beside the array; :func:`inpaint_plugin.write_image` with ``metadata=`` writes it back (and adds a
line describing the processing). What is kept, per format:

- ImageJ TIFF: the axes (``ZCYX`` stays ``ZCYX``), every ImageJ metadata item (spacing, unit,
  ranges, LUTs, labels, info, ...; the processing is appended to ``Info``), X/YResolution and
  ResolutionUnit.
- OME-TIFF: the whole OME-XML of the file read (physical sizes, channels, instrument,
  annotations...); the output's OME-XML describes the one image written (the ``Image`` of the
  series read; the file's other images and the references to them are dropped), with its
  ``TiffData`` rewritten for the file written, the pixel type of the result, and a
  ``CommentAnnotation`` describing the processing linked to the image; its sub-resolutions
  (SubIFDs) are written again (with dask), as for OME-Zarr below.
- other TIFF: axes (tifffile's JSON description), the original ImageDescription, resolution.
- OME-Zarr: the group's attributes (``multiscales``, ``omero``...), every level of the pyramid:
  the full resolution is the result; a coarser pixel is the mean of the finer level where a pixel
  it covers changed, and keeps the source's value elsewhere (the source's own downsampling rule).
  A ``.ome.zarr`` output from another input is a one-level NGFF 0.4 group when its axes allow.

Facts used: the ImageJ hyperstack axis order TZCYXS and its supported sample types (uint8, uint16,
int16, float32) from tifffile's ``imagej_description``/``imwrite`` documentation and tests run
against it; OME-XML element order from the OME 2016-06 schema (``Image``: ... ``Pixels``,
``ROIRef``, ``MicrobeamManipulationRef``, ``AnnotationRef``; ``OME``: ... ``Image``,
``StructuredAnnotations``, ``ROI``, ``BinaryOnly``; ``Pixels``: ``Channel``, then ``BinData`` /
``TiffData`` / ``MetadataOnly``, then ``Plane``) and its ``PixelType`` names; OME-Zarr
``multiscales`` layout (v0.4 in the group attributes, v0.5 under ``"ome"``) from the NGFF spec.
"""
from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

__all__ = ["ImageMetadata", "processing_note"]

_IJ_DTYPES = ("uint8", "uint16", "int16", "float32")
_IJ_ORDER = "TZCYXS"
_IJ_STRUCTURAL = ("ImageJ", "images", "channels", "slices", "frames", "axes")
_OME_TYPES = {"int8": "int8", "int16": "int16", "int32": "int32", "uint8": "uint8", "uint16": "uint16",
              "uint32": "uint32", "float32": "float", "float64": "double", "bool": "bit"}
_OME_NS_DEFAULT = "http://www.openmicroscopy.org/Schemas/OME/2016-06"
_RESOLUTION_UNITS = {2: "inch", 3: "centimeter"}
# OME's UnitsLength symbols for the unit names other formats use (NGFF / UDUNITS names, ImageJ's)
_OME_UNITS = {"micrometer": "µm", "um": "µm", "µm": "µm", "micron": "µm", "nanometer": "nm", "nm": "nm",
              "millimeter": "mm", "mm": "mm", "centimeter": "cm", "cm": "cm", "meter": "m", "m": "m",
              "inch": "in", "in": "in", "Å": "Å", "angstrom": "Å"}


def processing_note(method: Optional[str] = None, params: Optional[dict] = None, extra: str = "") -> str:
    """A one-line, 7-bit ASCII description of the processing for the output's metadata.

    Parameters
    ----------
    method : str, optional
        The method used.
    params : dict, optional
        Its parameters.
    extra : str
        Anything else to say (e.g. ``"detected defects: hot,dead"``).

    Returns
    -------
    str
    """
    try:
        from importlib.metadata import version

        ver = version("inpaint-plugin")
    except Exception:  # not installed (source tree)
        ver = "dev"
    text = f"inpainted with inpaint-plugin {ver}"
    if method:
        text += f" (method={method}"
        if params:
            text += ", " + ", ".join(f"{k}={v!r}" for k, v in sorted(params.items()))
        text += ")"
    if extra:
        text += f"; {extra}"
    return text.encode("ascii", "replace").decode("ascii")


@dataclass
class ImageMetadata:
    """What a file says about its image besides the pixels.

    Attributes
    ----------
    kind : str
        ``"imagej"``, ``"ome-tiff"``, ``"tiff"``, ``"ome-zarr"``, ``"zarr"``, ``"npy"`` or ``"picture"``.
    shape : tuple of int
        Shape of the array read.
    dtype : str
        Its dtype.
    axes : str or None
        One letter per axis (tifffile's codes: ``T`` time, ``Z``, ``C`` channel, ``Y``, ``X``, ``S``
        samples such as RGB, ``Q``/``I`` unknown), or ``None`` when the file does not say.
    spacing : dict
        Axis letter -> physical size of a pixel along it (calibration), for the axes the file gives.
    units : dict
        Axis letter -> unit of ``spacing`` (e.g. ``"um"``, ``"micron"``, ``"s"``).
    channel_names : tuple of str
        Channel names (OME ``Channel/@Name``, ImageJ ``Labels`` of a channel stack, OME-Zarr omero labels).
    resolution : tuple or None
        TIFF ``(XResolution, YResolution)`` as ``(numerator, denominator)`` pairs.
    resolution_unit : int or None
        TIFF ResolutionUnit (1 none, 2 inch, 3 centimeter).
    imagej : dict or None
        ImageJ metadata as tifffile reads it (description items and IJMetadata tags).
    ome_xml : str or None
        The OME-XML of an OME-TIFF.
    description : str or None
        A plain TIFF's own ImageDescription (not ImageJ/OME/tifffile JSON).
    shaped : dict or None
        Extra items of tifffile's JSON description (without ``shape``).
    zarr_attrs : dict or None
        Attributes of the zarr group (OME-Zarr) or array.
    zarr_format : int or None
        2 or 3.
    levels : tuple
        The pyramid, full resolution first: ``(path, shape, chunks, dtype)`` per level (OME-Zarr
        datasets; the sub-resolutions (SubIFDs) of an OME-TIFF, with ``chunks`` None).
    source : str or None
        The file read (used to keep the unchanged parts of pyramid levels).
    series : int
        The TIFF series read (an index of tifffile's ``TiffFile.series``; 0 for other formats).
    ome_image : int
        Which ``Image`` element of :attr:`ome_xml` (in document order) describes the array read.
    """

    kind: str
    shape: Tuple[int, ...]
    dtype: str
    axes: Optional[str] = None
    spacing: Dict[str, float] = field(default_factory=dict)
    units: Dict[str, str] = field(default_factory=dict)
    channel_names: Tuple[str, ...] = ()
    resolution: Optional[tuple] = None
    resolution_unit: Optional[int] = None
    imagej: Optional[Dict[str, Any]] = None
    ome_xml: Optional[str] = None
    description: Optional[str] = None
    shaped: Optional[Dict[str, Any]] = None
    zarr_attrs: Optional[Dict[str, Any]] = None
    zarr_format: Optional[int] = None
    levels: tuple = ()
    source: Optional[str] = None
    series: int = 0
    ome_image: int = 0

    @property
    def channel_axis(self) -> Optional[int]:
        """Index of the channel axis (``C``, else ``S`` samples) from :attr:`axes`, or ``None``."""
        if self.axes is None or len(self.axes) != len(self.shape):
            return None
        for letter in "CS":
            if letter in self.axes:
                return self.axes.index(letter)
        return None

    def axis_spacing(self, exclude_channels: bool = True) -> Tuple[Optional[float], ...]:
        """The pixel size along each axis (``None`` where the file gives none), without the channel
        axis by default: e.g. ``(0.5, 0.108, 0.108)`` for an ImageJ ``ZCYX`` stack (for anisotropic
        voxels).

        Parameters
        ----------
        exclude_channels : bool
            Leave the channel axis (:attr:`channel_axis`) out.

        Returns
        -------
        tuple
            One entry per axis of :attr:`shape` (minus the channel axis); all ``None`` when the
            axes are unknown.
        """
        ch = self.channel_axis if exclude_channels else None
        if self.axes is None or len(self.axes) != len(self.shape):
            return tuple(None for a in range(len(self.shape)) if a != ch)
        return tuple(self.spacing.get(letter) for a, letter in enumerate(self.axes) if a != ch)

    @property
    def time_axes(self) -> Tuple[int, ...]:
        """Indices of the time axes (``T``): frames, independent of each other when filling."""
        if self.axes is None or len(self.axes) != len(self.shape):
            return ()
        return tuple(a for a, letter in enumerate(self.axes) if letter == "T")

    def fits(self, shape) -> bool:
        """Whether this metadata describes an array of ``shape`` (same shape as the file read)."""
        return tuple(int(s) for s in shape) == tuple(self.shape)

    def drop_axis(self, axis: int) -> "ImageMetadata":
        """Metadata for an array without ``axis``, e.g. the mask of a multichannel image.

        Axes, calibration and resolution are kept (an ImageJ file keeps its spacing, unit and
        frame interval); what describes the dropped axis (OME-XML, channel names, ImageJ ranges
        and LUTs, pyramid levels) is not.

        Parameters
        ----------
        axis : int
            The axis to drop (negative counts from the end).

        Returns
        -------
        ImageMetadata
        """
        ndim = len(self.shape)
        if not -ndim <= axis < ndim:
            raise ValueError(f"axis={axis} is out of range for shape {self.shape}")
        axis %= ndim
        axes = self.axes if self.axes is not None and len(self.axes) == ndim else None
        letter = axes[axis] if axes is not None else None
        imagej = None
        kind = {"ome-tiff": "tiff", "ome-zarr": "zarr"}.get(self.kind, self.kind)
        if self.kind == "imagej" and self.imagej is not None:
            imagej = {k: v for k, v in self.imagej.items()
                      if k in ("ImageJ", "spacing", "unit", "finterval", "fps", "loop", "xorigin", "yorigin",
                               "zorigin")}
        return ImageMetadata(
            kind=kind, shape=self.shape[:axis] + self.shape[axis + 1:], dtype=self.dtype,
            axes=axes[:axis] + axes[axis + 1:] if axes is not None else None,
            spacing={k: v for k, v in self.spacing.items() if k != letter},
            units={k: v for k, v in self.units.items() if k != letter},
            resolution=self.resolution, resolution_unit=self.resolution_unit, imagej=imagej)


# --- reading ---------------------------------------------------------------------------------------

def _rational(value) -> Optional[tuple]:
    try:
        num, den = value
        return int(num), int(den)
    except (TypeError, ValueError):
        return None


def _pixel_size(res: Optional[tuple]) -> Optional[float]:
    if res is None or not res[0]:
        return None
    return res[1] / res[0]


def _series_page(series):
    """The first TIFF page (IFD) of a series' full resolution: its tags describe the series."""
    page = getattr(series.levels[0], "keyframe", None)
    if page is None:
        page = next(p for p in series.levels[0].pages if p is not None)
    return page


def _ome_image_index(xml: str, tif, index: int) -> Optional[int]:
    """Which ``Image`` of the OME-XML ``xml`` tifffile's series ``index`` of ``tif`` is, or ``None``.

    tifffile makes one series per ``Image`` that it can read, in document order, and skips the
    images it cannot (files missing from a multi-file set, discontiguous storage); so where the
    counts agree the order gives the answer, otherwise the image whose first ``TiffData/@IFD``
    (default 0, OME-TIFF specification) in this file is the series' first page.
    """
    try:
        root, ns, _ = _ome_parse(xml)
    except Exception:
        return None
    images = root.findall(_q(ns, "Image"))
    if len(images) == len(tif.series):
        return index
    first = _series_page(tif.series[index]).index
    name = getattr(tif.filehandle, "name", None)
    found = []
    for i, image in enumerate(images):
        pixels = image.find(_q(ns, "Pixels"))
        td = pixels.find(_q(ns, "TiffData")) if pixels is not None else None
        if td is None:
            continue
        uuid_el = td.find(_q(ns, "UUID"))
        if uuid_el is not None and uuid_el.get("FileName") not in (None, name):
            continue  # its planes are in another file of the set
        try:
            ifd = int(td.get("IFD", "0"))
        except ValueError:
            continue
        if ifd == first:
            found.append(i)
    return found[0] if len(found) == 1 else None


def tiff_metadata(tif, path, series: int = 0) -> ImageMetadata:
    """The :class:`ImageMetadata` of series ``series`` (full resolution) of an open ``tifffile.TiffFile``.

    The tags (resolution, description) are those of the series' first page; for an OME-TIFF the
    calibration and channel names come from the series' ``Image`` of the OME-XML (all of which is
    kept, with :attr:`ImageMetadata.ome_image` saying which image it is).
    """
    chosen = tif.series[series]
    level = chosen.levels[0]
    page = _series_page(chosen)
    tags = page.tags
    xres, yres = _rational(tags.valueof(282)), _rational(tags.valueof(283))
    runit = tags.valueof(296)
    runit = None if runit is None else int(runit)
    axes = str(chosen.axes)
    meta = ImageMetadata(kind="tiff", shape=tuple(level.shape), dtype=str(level.dtype), axes=axes,
                         resolution=(xres, yres) if xres and yres else None,
                         resolution_unit=runit, source=str(path), series=series)
    if tif.is_ome and tif.ome_metadata:
        image = _ome_image_index(tif.ome_metadata, tif, series)
        if image is None:  # which Image this series is cannot be told: axes and resolution only, no OME claims
            return meta
        meta.kind = "ome-tiff"
        meta.ome_xml = tif.ome_metadata
        meta.ome_image = image
        _ome_calibration(meta)
        if len(chosen.levels) > 1:
            meta.levels = tuple((str(i), tuple(lv.shape), None, str(lv.dtype)) for i, lv in enumerate(chosen.levels))
    elif tif.is_imagej and tif.imagej_metadata is not None:
        meta.kind = "imagej"
        ij = dict(tif.imagej_metadata)
        meta.imagej = ij
        unit = ij.get("unit")
        if isinstance(unit, str) and "\\u" in unit:  # ImageJ writes the micro sign as \u00B5
            try:
                unit = unit.encode("ascii").decode("unicode_escape")
            except (UnicodeError, ValueError):
                pass
        for letter, res in (("X", xres), ("Y", yres)):
            size = _pixel_size(res)
            if size is not None and letter in axes and (unit or runit not in (None, 1)):
                meta.spacing[letter] = size
                meta.units[letter] = str(unit or _RESOLUTION_UNITS.get(runit or 0, ""))
        if ij.get("spacing") is not None and "Z" in axes:
            meta.spacing["Z"] = float(ij["spacing"])
            if unit:
                meta.units["Z"] = str(unit)
        if ij.get("finterval") and "T" in axes:
            meta.spacing["T"] = float(ij["finterval"])
            meta.units["T"] = "s"
        labels = ij.get("Labels")
        if labels and "C" in axes and len(labels) >= meta.shape[axes.index("C")]:
            meta.channel_names = tuple(str(s) for s in labels[: meta.shape[axes.index("C")]])
    else:
        described = _shaped_description(page) if page.is_shaped else None
        if described is not None:
            shaped = {k: v for k, v in described.items() if k not in ("shape", "axes")}
            meta.shaped = shaped or None
            if isinstance(shaped.get("spacing"), dict):  # written by write_image from another format
                meta.spacing.update({str(k): float(v) for k, v in shaped["spacing"].items() if str(k) in axes})
                if isinstance(shaped.get("units"), dict):
                    meta.units.update({str(k): str(v) for k, v in shaped["units"].items() if str(k) in axes})
            desc = page.description if page.description and not page.description.startswith("{") else None
            meta.description = desc
        elif page.description:
            meta.description = page.description
        if runit in (2, 3):
            for letter, res in (("X", xres), ("Y", yres)):
                size = _pixel_size(res)
                if size is not None and letter in axes:
                    meta.spacing[letter] = size
                    meta.units[letter] = _RESOLUTION_UNITS[runit]
    return meta


def _shaped_description(page) -> Optional[Dict[str, Any]]:
    """The JSON ImageDescription tifffile writes on the first page of each series it writes, or None."""
    import json

    try:
        value = json.loads(page.description)
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _ome_parse(xml: str):
    """(root element, namespace URI, prefix map) of an OME-XML string; prefixes are kept on output."""
    import io
    import xml.etree.ElementTree as ET

    namespaces: Dict[str, str] = {}
    for _, (prefix, uri) in ET.iterparse(io.StringIO(xml), events=("start-ns",)):
        namespaces.setdefault(prefix, uri)
    root = ET.fromstring(xml)
    ns = root.tag[1:].split("}")[0] if root.tag.startswith("{") else ""
    return root, ns, namespaces


def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}" if ns else tag


def _ome_calibration(meta: ImageMetadata) -> None:
    """Physical sizes, time increment and channel names of the OME image read (``meta.ome_image``)."""
    if meta.ome_xml is None:
        return
    try:
        root, ns, _ = _ome_parse(meta.ome_xml)
    except Exception:  # malformed XML: keep it as text, without calibration
        return
    images = root.findall(_q(ns, "Image"))
    if not 0 <= meta.ome_image < len(images):
        return
    pixels = images[meta.ome_image].find(_q(ns, "Pixels"))
    if pixels is None:
        return
    for letter in "XYZ":
        value = pixels.get(f"PhysicalSize{letter}")
        if value is not None:
            meta.spacing[letter] = float(value)
            meta.units[letter] = pixels.get(f"PhysicalSize{letter}Unit", "µm")
    if pixels.get("TimeIncrement") is not None:
        meta.spacing["T"] = float(pixels.get("TimeIncrement"))
        meta.units["T"] = pixels.get("TimeIncrementUnit", "s")
    names = [c.get("Name") for c in pixels.findall(_q(ns, "Channel"))]
    if names and all(n is not None for n in names):
        meta.channel_names = tuple(names)


def zarr_metadata(node, array, path) -> ImageMetadata:
    """The :class:`ImageMetadata` of a zarr array or of an OME-Zarr group (``array``: its full resolution)."""
    import zarr

    attrs: Dict[str, Any] = dict(node.attrs)
    meta = ImageMetadata(kind="zarr", shape=tuple(array.shape), dtype=str(array.dtype),
                         zarr_attrs=copy.deepcopy(attrs) or None, zarr_format=int(node.metadata.zarr_format),
                         source=str(path))
    multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
    if isinstance(node, zarr.Group) and multiscales:
        meta.kind = "ome-zarr"
        ms = multiscales[0]
        levels = []
        for d in ms["datasets"]:
            arr: Any = node[d["path"]]
            levels.append((d["path"], tuple(arr.shape), tuple(arr.chunks), str(arr.dtype)))
        meta.levels = tuple(levels)
        axes = ms.get("axes")
        if axes and len(axes) == array.ndim:
            names = [a["name"] if isinstance(a, dict) else str(a) for a in axes]
            types = [a.get("type") if isinstance(a, dict) else None for a in axes]
            letters = "".join("C" if t == "channel" else (n[:1].upper() or "Q") for n, t in zip(names, types))
            meta.axes = letters
            scale = _ome_zarr_scale(ms, 0, array.ndim)
            for i, letter in enumerate(letters):
                if scale is not None and letter != "C":
                    meta.spacing[letter] = float(scale[i])
                unit = axes[i].get("unit") if isinstance(axes[i], dict) else None
                if unit:
                    meta.units[letter] = str(unit)
        omero = attrs.get("omero") or attrs.get("ome", {}).get("omero")
        if omero and omero.get("channels"):
            names = [c.get("label") for c in omero["channels"]]
            if all(n is not None for n in names):
                meta.channel_names = tuple(str(n) for n in names)
    else:
        dims = attrs.get("_ARRAY_DIMENSIONS")  # xarray's convention for zarr v2 arrays
        if not dims and meta.zarr_format == 3:
            dims = getattr(array.metadata, "dimension_names", None)
        if dims and any(d is None for d in dims):
            dims = None
        if dims and len(dims) == array.ndim:
            meta.axes = "".join("C" if str(d).lower() in ("c", "channel", "band") else str(d)[:1].upper()
                                for d in dims)
    return meta


def _ome_zarr_scale(ms: dict, level: int, ndim: int) -> Optional[list]:
    """The scale of ``level`` (its own transformations times the multiscale-wide ones), or None."""
    scale = [1.0] * ndim
    found = False
    for transforms in (ms["datasets"][level].get("coordinateTransformations") or [],
                       ms.get("coordinateTransformations") or []):
        for t in transforms:
            if t.get("type") == "scale" and len(t.get("scale", ())) == ndim:
                scale = [a * float(b) for a, b in zip(scale, t["scale"])]
                found = True
    return scale if found else None


# --- writing TIFF ----------------------------------------------------------------------------------

def _subsequence(axes: str, order: str) -> bool:
    pos = -1
    for letter in axes:
        i = order.find(letter, pos + 1)
        if i < 0:
            return False
        pos = i
    return True


def tiff_options(name: str, shape, dtype, meta: Optional[ImageMetadata], processing: Optional[str]) -> dict:
    """Keyword arguments for ``tifffile.imwrite`` that write ``meta`` back (see the module docstring).

    Also gives ``pages`` (leading axes written as pages) and ``tile`` (``None``: contiguous pages).
    """
    import numpy as np

    dt = np.dtype(dtype)
    ndim = len(shape)
    m = meta if meta is not None and meta.fits(shape) else None  # metadata of another shape is not applied
    axes = m.axes if m is not None and m.axes and len(m.axes) == ndim else None
    rgb_dtype = dt in (np.uint8, np.uint16)
    if axes is not None:
        rgb = axes.endswith("S") and shape[-1] in (3, 4) and rgb_dtype
    else:
        rgb = ndim == 3 and shape[-1] in (3, 4) and rgb_dtype
    opts: Dict[str, Any] = {"photometric": "rgb" if rgb else "minisblack", "tile": (256, 256),
                            "pages": ndim - (3 if rgb else 2), "metadata": {}}
    if axes is not None and axes.endswith("S") and not rgb and ndim >= 3:
        opts["planarconfig"] = "contig"  # samples that are not RGB stay interleaved
        opts["pages"] = ndim - 3
    if m is not None and m.resolution:
        opts["resolution"] = m.resolution
        if m.resolution_unit is not None:
            opts["resolutionunit"] = m.resolution_unit
    out_ome = name.lower().endswith((".ome.tif", ".ome.tiff"))
    if m is not None and m.ome_xml and dt.name in _OME_TYPES:
        xml = ome_xml_for_output(m.ome_xml, shape, dt, processing, image=m.ome_image)
        if xml is not None:
            opts["metadata"] = None
            opts["description"] = xml.encode("utf-8")
            if m.kind == "ome-tiff" and len(m.levels) > 1 and opts["tile"]:
                opts["levels"] = [lv[1] for lv in m.levels]  # sub-resolutions written as SubIFDs
            return opts
    md: Dict[str, Any] = {}
    if out_ome:
        if m is not None and axes is not None and set(axes) <= set(_IJ_ORDER):
            md["axes"] = axes
            for letter in "XYZ":
                if letter in m.spacing:
                    md[f"PhysicalSize{letter}"] = m.spacing[letter]
                    unit = _OME_UNITS.get(m.units.get(letter, ""))
                    if unit:
                        md[f"PhysicalSize{letter}Unit"] = unit
            if m.channel_names and "C" in axes and len(m.channel_names) == shape[axes.index("C")]:
                md["Channel"] = {"Name": list(m.channel_names)}
        if processing:
            md["Description"] = processing
        opts["ome"] = True
        opts["metadata"] = md
        return opts
    if (m is not None and m.imagej is not None and dt.name in _IJ_DTYPES and axes is not None
            and _subsequence(axes, _IJ_ORDER)):
        md = {k: v for k, v in m.imagej.items() if k not in _IJ_STRUCTURAL}
        md["axes"] = axes
        if processing:
            info = str(md.get("Info") or "")
            md["Info"] = (info.rstrip("\n") + "\n" if info else "") + processing
        opts.update(imagej=True, metadata=md, tile=None)
        opts["pages"] = ndim - (3 if axes.endswith("S") else 2)
        return opts
    md = dict(m.shaped or {}) if m is not None else {}
    if axes is not None:
        md["axes"] = axes
        if m is not None and m.spacing and not m.resolution:  # calibration without TIFF resolution tags
            md["spacing"] = dict(m.spacing)
            md["units"] = dict(m.units)
    if processing:
        md["processing"] = processing
    opts["metadata"] = md
    if m is not None and m.description:
        opts["description"] = m.description.encode("ascii", "replace")
    return opts


def ome_xml_for_output(xml: str, shape, dtype, processing: Optional[str], image: int = 0) -> Optional[str]:
    """The OME-XML of image ``image`` of ``xml`` for a new single-file OME-TIFF of that image.

    Everything about the image is kept; other images (they refer to pages that are not written)
    are dropped with the ``ImageRef`` elements that point at them (datasets, wells), so that the
    output describes one image; ``TiffData`` becomes one block of all planes from IFD 0 in
    DimensionOrder, the pixel type follows ``dtype``, and a ``CommentAnnotation`` holding
    ``processing`` is linked to the image. Returns ``None`` when the XML cannot be parsed, has no
    such image, or the image does not describe ``shape``.
    """
    import xml.etree.ElementTree as ET

    import numpy as np

    try:
        root, ns, namespaces = _ome_parse(xml)
    except Exception:
        return None
    images = root.findall(_q(ns, "Image"))
    if not 0 <= image < len(images):
        return None
    kept = images[image]
    pixels = kept.find(_q(ns, "Pixels"))
    if pixels is None:
        return None
    try:
        sizes = {k: int(pixels.get(f"Size{k}", "1")) for k in "XYZCT"}
    except ValueError:
        return None
    n = 1
    for s in shape:
        n *= int(s)
    if n != sizes["X"] * sizes["Y"] * sizes["Z"] * sizes["C"] * sizes["T"]:
        return None
    dropped = {other.get("ID") for other in images if other is not kept}
    for other in images:
        if other is not kept:
            root.remove(other)
    for parent in list(root.iter()):  # references to the dropped images would dangle
        for child in list(parent):
            if child.tag == _q(ns, "ImageRef") and child.get("ID") in dropped:
                parent.remove(child)
    pixels.set("Type", _OME_TYPES[np.dtype(dtype).name])
    if np.dtype(dtype).kind == "f":
        pixels.set("SignificantBits", str(np.dtype(dtype).itemsize * 8))
    elif "SignificantBits" in pixels.attrib and np.dtype(dtype).kind in "iu":
        pixels.set("SignificantBits", str(np.dtype(dtype).itemsize * 8))
    channels = pixels.findall(_q(ns, "Channel"))
    samples = max([int(c.get("SamplesPerPixel", "1")) for c in channels] or [1])
    planes = sizes["Z"] * sizes["T"] * max(1, sizes["C"] // max(1, samples))
    children = list(pixels)
    position = next((i for i, c in enumerate(children)
                     if c.tag in (_q(ns, "BinData"), _q(ns, "TiffData"), _q(ns, "MetadataOnly"))), None)
    for c in children:
        if c.tag in (_q(ns, "BinData"), _q(ns, "TiffData"), _q(ns, "MetadataOnly")):
            pixels.remove(c)
    if position is None:
        position = len([c for c in pixels if c.tag == _q(ns, "Channel")])
    tiffdata = ET.Element(_q(ns, "TiffData"), {"IFD": "0", "PlaneCount": str(planes)})
    pixels.insert(position, tiffdata)
    root.set("UUID", f"urn:uuid:{uuid.uuid4()}")
    if processing:
        ids = {e.get("ID") for e in root.iter() if e.get("ID")}
        k = 0
        while f"Annotation:inpaint-plugin:{k}" in ids:
            k += 1
        ann_id = f"Annotation:inpaint-plugin:{k}"
        sa = root.find(_q(ns, "StructuredAnnotations"))
        if sa is None:
            sa = ET.Element(_q(ns, "StructuredAnnotations"))
            kids = list(root)
            at = next((i for i, c in enumerate(kids) if c.tag in (_q(ns, "ROI"), _q(ns, "BinaryOnly"))), len(kids))
            root.insert(at, sa)
        ann = ET.SubElement(sa, _q(ns, "CommentAnnotation"), {"ID": ann_id, "Namespace": "inpaint-plugin"})
        ET.SubElement(ann, _q(ns, "Value")).text = processing
        ET.SubElement(kept, _q(ns, "AnnotationRef"), {"ID": ann_id})  # the last child an Image may have
    for prefix, uri in namespaces.items():
        ET.register_namespace(prefix, uri)
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>' + body


def ome_annotations(xml: str) -> list:
    """The values of the ``CommentAnnotation`` elements of an OME-XML string (for tests and users)."""
    root, ns, _ = _ome_parse(xml)
    return [(e.findtext(_q(ns, "Value")) or "") for e in root.iter(_q(ns, "CommentAnnotation"))]


# --- OME-Zarr for a new .ome.zarr output -------------------------------------------------------------

_NGFF_TYPES = {"T": "time", "C": "channel", "Z": "space", "Y": "space", "X": "space"}
_NGFF_UNITS = {"um": "micrometer", "µm": "micrometer", "\\u00B5m": "micrometer", "micron": "micrometer",
               "micrometer": "micrometer", "nm": "nanometer", "nanometer": "nanometer", "mm": "millimeter",
               "millimeter": "millimeter", "cm": "centimeter", "centimeter": "centimeter", "m": "meter",
               "meter": "meter", "inch": "inch", "s": "second", "sec": "second", "second": "second",
               "ms": "millisecond", "millisecond": "millisecond", "min": "minute", "minute": "minute",
               "h": "hour", "hour": "hour"}


def new_ome_zarr_metadata(shape, dtype, meta: Optional[ImageMetadata]) -> Optional[ImageMetadata]:
    """Single-level OME-Zarr (NGFF 0.4) metadata for an array written to a ``.ome.zarr`` name.

    The axes come from ``meta`` (they must be 2 to 5 of ``T, C, Z, Y, X`` in that order, as NGFF
    0.4 requires; a 2-D array without metadata is ``YX``), the scales from its spacing, units
    mapped to NGFF (UDUNITS) names where known, channel names to ``omero`` labels. Returns ``None``
    when the axes cannot be described (the output is then a plain zarr array).
    """
    ndim = len(shape)
    axes = meta.axes if meta is not None and meta.fits(shape) and meta.axes else None
    if axes is None and ndim == 2:
        axes = "YX"
    if axes is None or not 2 <= ndim <= 5 or len(axes) != ndim or not _subsequence(axes, "TCZYX"):
        return None
    spacing = meta.spacing if meta is not None and axes == meta.axes else {}
    units = meta.units if meta is not None and axes == meta.axes else {}
    entries = []
    for letter in axes:
        entry = {"name": letter.lower(), "type": _NGFF_TYPES[letter]}
        unit = _NGFF_UNITS.get(str(units.get(letter, "")))
        if unit and letter != "C":
            entry["unit"] = unit
        entries.append(entry)
    scale = [float(spacing.get(letter, 1.0)) if letter != "C" else 1.0 for letter in axes]
    ms = {"version": "0.4", "axes": entries,
          "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}]}
    attrs: Dict[str, Any] = {"multiscales": [ms]}
    if meta is not None and meta.channel_names and "C" in axes and len(meta.channel_names) == shape[axes.index("C")]:
        attrs["omero"] = {"channels": [{"label": n} for n in meta.channel_names]}
    return ImageMetadata(kind="ome-zarr", shape=tuple(int(s) for s in shape), dtype=str(dtype), axes=axes,
                         zarr_attrs=attrs, zarr_format=2, levels=(("0", tuple(shape), None, str(dtype)),))
