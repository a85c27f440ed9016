"""DICOM outputs of ``predict --dicom``: a presentation state and a structured report per DICOM input, for a PACS.

For every DICOM input two objects are written with highdicom, each in a new series of the source's study:

* ``OUT/dicom/<name>.gsps.dcm``: a Grayscale Softcopy Presentation State (modality PR, series number
  :data:`GSPS_SERIES_NUMBER`). Its graphic layer ``LANDMARKS`` holds, for every *detected* landmark (peak >= the
  job's threshold), a POINT graphic object and a text object (the landmark name, anchored at the point), in PIXEL
  units over the original image. A viewer that shows presentation states (most PACS viewers, OHIF, Weasis,
  Horos) draws them when the user picks the presentation state of the image. Landmarks below the threshold are
  *not drawn*: a mark on the image reads as a finding, and a position the detector does not stand behind must not
  look like one. The content description says how many of how many were detected, and the SR lists the rest.
  The window (VOI LUT), rescale (modality LUT) of the source are carried over so the image looks as it does
  without the presentation state; a MONOCHROME1 source gets the INVERSE presentation LUT (bone stays white).
* ``OUT/dicom/<name>.sr.dcm``: a Comprehensive SR measurement report (TID 1500, modality SR, series number
  :data:`SR_SERIES_NUMBER`, PRELIMINARY, UNVERIFIED: an algorithm's output nobody has signed). Each detected
  landmark is a planar ROI group (TID 1410): tracking identifier (the landmark name) and tracking UID (the same UID
  as its graphic and text objects in the GSPS), the point as SCOORD POINT referencing the source SOP Instance,
  finding type "Anatomical point" (SCT 711101009), the landmark name as finding site, the algorithm
  (landmark-afl, version, threshold), the peak response as a numeric measurement (unit "1") and "Landmark
  detected: Yes". A landmark below the threshold is a group without coordinates (TID 1501, source image
  referenced) with its peak and "Landmark detected: No". Landmark names and the two private concepts use the
  private coding scheme :data:`SCHEME` (declared in the Coding Scheme Identification Sequence).

Names: ``<name>`` is the overlay's name (its path under the input root, see
:func:`landmark_afl.inference.inputs.overlay_name`) without ``.png``, e.g. ``ceph/a.dcm`` ->
``OUT/dicom/ceph/a.dcm.gsps.dcm`` and ``OUT/dicom/ceph/a.dcm.sr.dcm``. Each file is written atomically; both are
written before the image's results.csv row (the commit), so a resumed job never finds an image done without them.

Coordinates: ours are (x = column, y = row) with the origin at the *centre* of the top-left pixel; DICOM graphic
and SCOORD coordinates have it at the top-left *corner* of that pixel, so DICOM = ours + 0.5
(:func:`to_dicom_points`). DICOM cannot hold a point outside the image: a point is clipped to [0, Columns] x
[0, Rows]; a non-finite one is treated as not detected.

Frames: the reader uses frame 0 of a multi-frame image; for a multi-frame IOD both objects reference frame 1 (DICOM
numbers frames from 1) and the display settings of that frame.

What is copied from the source (and nothing else), see :func:`reference_dataset`:

* patient identity, as the study carries it: PatientName, PatientID, PatientBirthDate, PatientSex (Type 2 in every
  IOD: written empty when the source has none). A PACS files a PR or SR object under the patient and study of the
  image it references and checks the identity against the study's, so these are what the referenced study
  requires. This differs from the tables (:mod:`landmark_afl.inference.phi`: results.csv / results.jsonl carry no
  patient identity without ``--keep-phi``): the DICOM outputs go back to the PACS, next to their source image,
  and hold PHI as that image does; ``--keep-phi`` does not change them;
* study identity: StudyInstanceUID, StudyDate, StudyTime, StudyID, AccessionNumber; ReferringPhysicianName is
  Type 2 and written *empty* (never copied);
* the reference: SOPClassUID, SOPInstanceUID, SeriesInstanceUID (in the referenced image / evidence sequences);
* no character set: the copied text is decoded with the source's and the outputs are written in UTF-8
  (SpecificCharacterSet ISO_IR 192) when any of it is not ASCII;
* for the GSPS's display only: Rows, Columns (displayed area), the rescale (RescaleSlope / RescaleIntercept /
  RescaleType / ModalityLUTSequence) and window (WindowCenter / WindowWidth / WindowCenterWidthExplanation /
  VOILUTFunction / VOILUTSequence) of the image or of frame 1; SamplesPerPixel, PhotometricInterpretation and
  NumberOfFrames are read to decide (GSPS or not, INVERSE or not, frame reference), not written.

Institution, physicians, operators, station, device serial numbers, descriptions, other patient IDs, ages,
addresses, comments... are never copied, nor the source equipment (highdicom would add it as contributing
equipment, with the institution's name and address, were it given the whole header).

A source whose header lacks what the objects need (a UID, Rows / Columns, an image SOP class) is skipped with a
reason (:class:`DicomOutputSkipped`), and so is a colour image for the GSPS (the SR is still written); the job goes
on. Non-DICOM inputs get no DICOM outputs (the reason is recorded, not an error).

Example:
    >>> writer = DicomOutputWriter(Path("out"), ["sella", "nasion"], threshold=0.5)  # doctest: +SKIP
    >>> writer.write("/in/a.dcm", Path("/in"), xy, peaks)  # doctest: +SKIP
    {'gsps': 'dicom/a.dcm.gsps.dcm', 'sr': 'dicom/a.dcm.sr.dcm', 'skipped': None}
"""

from __future__ import annotations

import copy
import importlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataelem import DataElement

from landmark_afl.engine.atomic import write_atomic

DICOM_DIR = "dicom"
GSPS_SUFFIX = ".gsps.dcm"
SR_SUFFIX = ".sr.dcm"
GSPS_SERIES_NUMBER = 9901
SR_SERIES_NUMBER = 9902
LAYER = "LANDMARKS"
MANUFACTURER = "landmark-afl"
SCHEME = "99LMAFL"  # private coding scheme: landmark names, peak response, "landmark detected"

PATIENT_ATTRIBUTES = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex")
STUDY_ATTRIBUTES = ("StudyInstanceUID", "StudyDate", "StudyTime", "StudyID", "AccessionNumber")
EMPTY_ATTRIBUTES = ("ReferringPhysicianName",)  # Type 2: present, never copied
REFERENCE_ATTRIBUTES = ("SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID")
DISPLAY_ATTRIBUTES = (
    "Rows", "Columns", "SamplesPerPixel", "PhotometricInterpretation", "NumberOfFrames",
    "RescaleSlope", "RescaleIntercept", "RescaleType", "ModalityLUTSequence",
    "WindowCenter", "WindowWidth", "WindowCenterWidthExplanation", "VOILUTFunction", "VOILUTSequence",
)  # fmt: skip
COPIED_ATTRIBUTES = PATIENT_ATTRIBUTES + STUDY_ATTRIBUTES + REFERENCE_ATTRIBUTES + DISPLAY_ATTRIBUTES
NOT_DICOM = "not a DICOM file: no presentation state or report"  # the recorded reason (not an error)
_REQUIRED_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")
_FIX = "re-export the image from the PACS or modality with a complete header, or predict without --dicom"


class DicomOutputSkipped(ValueError):
    """A DICOM output that cannot be made from this source (the message names the file, the cause and the fix)."""


def require_highdicom():
    """The highdicom module, or an ImportError that says which pip install gives it."""
    try:
        import highdicom
    except ImportError as err:  # a dependency; an environment without it can still predict without --dicom
        raise ImportError("predict --dicom needs highdicom: pip install 'highdicom>=0.23'") from err
    return highdicom


def _iod_rules():
    """highdicom's tables of the standard (which IODs hold pixels / frames): ``_standard_utils`` from 0.28 on,
    ``_module_utils`` before; None when a later highdicom moves them (private modules), and the header decides."""
    require_highdicom()
    for name in ("_standard_utils", "_module_utils"):
        try:
            rules = importlib.import_module(f"highdicom.{name}")
        except ImportError:
            continue
        if hasattr(rules, "does_iod_have_pixel_data") and hasattr(rules, "is_attribute_in_iod"):
            return rules
    return None


def dicom_output_names(path: Path, root: Path) -> tuple[Path, Path]:
    """(GSPS, SR) names of ``path`` relative to OUT/dicom: the overlay's name with the suffixes instead of .png."""
    from landmark_afl.inference.inputs import overlay_name

    png = overlay_name(Path(path), Path(root))
    stem = png.name[: -len(".png")]
    return png.with_name(stem + GSPS_SUFFIX), png.with_name(stem + SR_SUFFIX)


def to_dicom_points(xy: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """DICOM (column, row) of our (x, y) [K, 2]: + 0.5 (pixel centre -> corner origin), clipped into the image.

    Example:
        >>> to_dicom_points(np.array([[0.0, 0.0], [9.5, -3.0]]), rows=8, cols=10).tolist()
        [[0.5, 0.5], [10.0, 0.0]]
    """
    xy = np.asarray(xy, np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"landmarks must be [K, 2] (x, y), got shape {xy.shape}")
    out = xy + 0.5
    return np.stack([np.clip(out[:, 0], 0.0, float(cols)), np.clip(out[:, 1], 0.0, float(rows))], axis=1)


def reference_dataset(source) -> object:
    """The part of a source header the outputs may use (:data:`COPIED_ATTRIBUTES`, see the module doc).

    highdicom copies the Patient and Study modules of the dataset it is given (and the source's equipment and
    institution into the SR); handing it this dataset instead of the header is what keeps everything else out.

    Raises:
        DicomOutputSkipped: a required UID, Rows or Columns is missing, or the SOP class is not an image.
    """
    from pydicom.dataset import Dataset

    hd = require_highdicom()
    where = getattr(source, "filename", None) or "the source"
    missing = [k for k in _REQUIRED_UIDS if not str(source.get(k, "") or "").strip()]
    missing += [k for k in ("Rows", "Columns") if not source.get(k)]
    if missing:
        raise DicomOutputSkipped(
            f"{where}: header lacks {', '.join(missing)}, which the presentation state and report must reference; "
            f"no DICOM outputs ({_FIX})"
        )
    iod = _iod_rules()
    try:  # without the tables: an image has Rows and Columns (checked above)
        is_image = iod.does_iod_have_pixel_data(str(source.SOPClassUID)) if iod is not None else True
    except KeyError:
        is_image = False
    if not is_image:
        raise DicomOutputSkipped(
            f"{where}: SOP class {source.SOPClassUID} is not an image class DICOM knows; a presentation state or "
            "report cannot reference it (no DICOM outputs; predict without --dicom for this file)"
        )
    ref = Dataset()
    for keyword in COPIED_ATTRIBUTES:
        if keyword in source:
            ref[keyword] = source[keyword]
    for keyword in PATIENT_ATTRIBUTES + STUDY_ATTRIBUTES + EMPTY_ATTRIBUTES:  # Type 2 somewhere: present
        if keyword not in ref:
            setattr(ref, keyword, "")
    _clean(ref)
    ref.SamplesPerPixel = int(source.get("SamplesPerPixel", 1) or 1)
    if (  # a multi-frame IOD: frame 1's settings
        iod.is_attribute_in_iod("NumberOfFrames", str(ref.SOPClassUID))
        if iod is not None
        else _frames(source) > 1 or "PerFrameFunctionalGroupsSequence" in source
    ):
        ref.NumberOfFrames = _frames(source)
        ref.SharedFunctionalGroupsSequence = [_frame_one_display(source, hd)]
        ref.PerFrameFunctionalGroupsSequence = []
    return ref


def _clean(ref) -> None:
    """Make copied values highdicom accepts without changing their meaning: an invalid Type 2 date, time or sex
    becomes empty (unknown), text is decoded with the source's character set (and written as UTF-8, ISO_IR 192,
    when it is not ASCII), and LUT data read as a list of numbers becomes the 16-bit words it is."""
    from pydicom.valuerep import DA, TM

    for keyword, parse in (("PatientBirthDate", DA), ("StudyDate", DA), ("StudyTime", TM)):
        value = str(ref.get(keyword) or "").strip()
        try:
            parse(value) if value else None
        except ValueError:
            setattr(ref, keyword, "")
    if str(ref.PatientSex).strip().upper() not in ("M", "F", "O"):
        ref.PatientSex = ""
    texts = ("PatientName", "PatientID", "StudyID", "AccessionNumber")
    for keyword in texts:  # decoded with the source's character set; written as UTF-8 where not ASCII
        setattr(ref, keyword, str(ref.get(keyword) or ""))
    if any(not str(ref.get(k)).isascii() for k in texts):
        ref.SpecificCharacterSet = "ISO_IR 192"
    for keyword in ("VOILUTSequence", "ModalityLUTSequence"):
        if keyword in ref:
            ref[keyword] = copy.deepcopy(ref[keyword])
            for item in ref[keyword].value:
                if isinstance(item.get("LUTData"), list | tuple):
                    item["LUTData"] = DataElement(0x00283006, "OW", np.asarray(item.LUTData, "<u2").tobytes())


def _frame_one_display(source, hd) -> object:
    """A functional group item with frame 1's window and rescale (shared, per-frame or root-level)."""
    from pydicom.dataset import Dataset

    groups = [g for g in (source.get("SharedFunctionalGroupsSequence") or [])[:1]]
    groups += [g for g in (source.get("PerFrameFunctionalGroupsSequence") or [])[:1]]
    item = Dataset()
    for keyword, fields in (
        ("FrameVOILUTSequence", ("WindowCenter", "WindowWidth", "WindowCenterWidthExplanation", "VOILUTFunction")),
        ("PixelValueTransformationSequence", ("RescaleSlope", "RescaleIntercept", "RescaleType")),
    ):
        found = next((g.get(keyword)[0] for g in groups if g.get(keyword)), None)
        if found is None and fields[0] in source and fields[1] in source:
            found = source
        if found is None or fields[0] not in found or fields[1] not in found:
            continue
        sub = Dataset()
        for field in fields:
            if field in found:
                sub[field] = found[field]
        setattr(item, keyword, [sub])
    return item


@dataclass(frozen=True)
class _Mark:
    name: str
    col: float
    row: float
    peak: float
    detected: bool
    uid: str


class DicomOutputWriter:
    """Writes the GSPS and the SR of every DICOM image of a predict job into OUT/dicom.

    Args:
        out_dir: OUT.
        landmarks: landmark names, in the model's order.
        threshold: the job's presence threshold (recorded in the objects).
        protocol: the contrast protocol's name (recorded as an algorithm parameter).
        device_uid: the SR's device observer UID (None = derived from the version, ``model_id`` and the landmark
            names, so the reports of one model keep one device UID and two models trained on the same landmarks
            differ).
        model_id: what tells the model apart (``predict`` gives its checkpoint's SHA-256).
    """

    def __init__(
        self,
        out_dir: Path,
        landmarks: list[str],
        threshold: float,
        protocol: str = "",
        device_uid: str | None = None,
        model_id: str = "",
    ) -> None:
        from pydicom.uid import generate_uid

        from landmark_afl import __version__

        require_highdicom()
        self.out_dir = Path(out_dir)
        self.landmarks = list(landmarks)
        self.threshold = float(threshold)
        self.protocol = protocol
        self.version = __version__
        entropy = ["landmark-afl", __version__, model_id, *self.landmarks]  # one device UID per model
        self.device_uid = device_uid or generate_uid(entropy_srcs=entropy)

    def write(self, path: str | Path, root: Path, xy: np.ndarray, peaks: np.ndarray) -> dict:
        """Write both objects of one image; returns ``{"gsps", "sr"}`` (paths relative to OUT, or None) and
        ``"skipped"`` (why an object is missing, or None). Never raises for a bad source.

        Args:
            path: the input image.
            root: the folder output names are taken relative to (the overlays' root).
            xy: [K, 2] landmarks (x, y) in original pixels, origin at the centre of the top-left pixel.
            peaks: [K] peak responses (detected: peak >= threshold).
        """
        from landmark_afl.io import is_dicom

        record = {"gsps": None, "sr": None, "skipped": None}
        if not is_dicom(path):
            record["skipped"] = NOT_DICOM
            return record
        with warnings.catch_warnings():  # pydicom's / highdicom's doubts about copied values: copied as they are
            warnings.simplefilter("ignore", UserWarning)
            reasons = self._write(Path(path), root, xy, peaks, record)
        record["skipped"] = "; ".join(reasons) or None
        return record

    def _write(self, path: Path, root: Path, xy, peaks, record: dict) -> list[str]:
        try:
            ref, marks, inverse = self._prepare(path, xy, peaks)
        except DicomOutputSkipped as err:
            return [str(err)]
        except Exception as err:  # noqa: BLE001 - a header value the copy cannot take must not stop the batch
            detail = " ".join(str(err).split())
            return [f"{path}: DICOM outputs not written: {type(err).__name__}: {detail} ({_FIX})"]
        reasons = []
        builders = (("gsps", lambda: self.build_gsps(ref, marks, inverse)), ("sr", lambda: self.build_sr(ref, marks)))
        for (kind, build), name in zip(builders, dicom_output_names(path, root), strict=True):
            try:
                dataset = build()
                if "SpecificCharacterSet" in ref:  # UTF-8 names (older highdicom does not carry it over)
                    dataset.SpecificCharacterSet = ref.SpecificCharacterSet
                target = self.out_dir / DICOM_DIR / name
                target.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(target, _to_bytes(dataset))
                record[kind] = (Path(DICOM_DIR) / name).as_posix()
            except DicomOutputSkipped as err:
                reasons.append(str(err) if str(path) in str(err) else f"{path}: {err}")
            except Exception as err:  # noqa: BLE001 - a header highdicom refuses must not stop the batch
                detail = " ".join(str(err).split())
                reasons.append(f"{path}: {kind.upper()} not written: {type(err).__name__}: {detail} ({_FIX})")
        return reasons

    def _prepare(self, path, xy: np.ndarray, peaks: np.ndarray) -> tuple[object, list[_Mark], bool]:
        """The reference dataset, the marks, and whether the image is shown inverted (the reader's rule)."""
        import pydicom

        from landmark_afl.io.dicom_pixels import needs_inversion

        hd = require_highdicom()
        try:
            source = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        except Exception as err:  # noqa: BLE001 - the pixels were read; only the header is in question here
            raise DicomOutputSkipped(f"{path}: header unreadable for DICOM outputs ({err}); {_FIX}") from err
        source.filename = str(path)
        ref = reference_dataset(source)
        points = to_dicom_points(xy, int(ref.Rows), int(ref.Columns))
        peaks = np.asarray(peaks, np.float64).reshape(-1)
        if len(peaks) != len(self.landmarks) or len(points) != len(self.landmarks):
            raise ValueError(f"{len(points)} points / {len(peaks)} peaks for {len(self.landmarks)} landmarks")
        finite = np.isfinite(np.asarray(xy, np.float64)).all(axis=1)
        marks = [
            _Mark(name, float(points[k, 0]), float(points[k, 1]), float(peaks[k]),
                  bool(finite[k] and peaks[k] >= self.threshold), str(hd.UID()))
            for k, name in enumerate(self.landmarks)
        ]  # fmt: skip
        photometric = str(source.get("PhotometricInterpretation", "")).strip().upper()
        return ref, marks, needs_inversion(source, photometric) is not None

    def _description(self, marks: list[_Mark]) -> str:
        n = sum(m.detected for m in marks)
        return f"landmark-afl {self.version}: {n} of {len(marks)} landmarks detected (peak >= {self.threshold:g})"[:64]

    def build_gsps(self, ref, marks: list[_Mark], inverse: bool):
        """The Grayscale Softcopy Presentation State (detected landmarks as POINT + label in layer LANDMARKS).

        ``inverse``: the image is shown with bone white by inverting it (MONOCHROME1, or a Presentation LUT Shape
        INVERSE on the source: ``io.dicom_pixels.needs_inversion``, as the reader and the overlays show it).
        """
        hd = require_highdicom()
        photometric = str(ref.get("PhotometricInterpretation", "")).upper()
        if int(ref.SamplesPerPixel) != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
            raise DicomOutputSkipped(
                f"GSPS not written: a {photometric or 'colour'} image has no "
                "grayscale presentation state (that is for MONOCHROME1 / MONOCHROME2 images); its landmarks are in "
                "the SR and results.csv"
            )
        layer = hd.pr.GraphicLayer(LAYER, order=1, description="landmark-afl detected landmarks",
                                   display_color=hd.color.CIELabColor(97.0, -21.0, 94.0))  # fmt: skip  # yellow
        units = hd.pr.AnnotationUnitsValues.PIXEL
        graphics, texts = [], []
        for m in (m for m in marks if m.detected):
            point = np.array([[m.col, m.row]])
            graphics.append(hd.pr.GraphicObject(hd.pr.GraphicTypeValues.POINT, point, units, tracking_id=m.name,
                                                tracking_uid=m.uid))  # fmt: skip
            texts.append(hd.pr.TextObject(m.name, units, anchor_point=(m.col, m.row), tracking_id=m.name,
                                          tracking_uid=m.uid))  # fmt: skip
        frame = 1 if _is_multiframe(ref) else None
        annotations = None
        if graphics:
            annotations = [hd.pr.GraphicAnnotation([ref], layer, referenced_frame_number=frame,
                                                   graphic_objects=graphics, text_objects=texts)]  # fmt: skip
        shape = hd.PresentationLUTShapeValues.INVERSE if inverse else hd.PresentationLUTShapeValues.IDENTITY
        return hd.pr.GrayscaleSoftcopyPresentationState(
            referenced_images=[ref],
            **self._new_instance(GSPS_SERIES_NUMBER, "landmark-afl landmarks (presentation state)"),
            device_serial_number=None,
            content_label=LAYER,
            content_description=self._description(marks),
            graphic_annotations=annotations,
            graphic_layers=[layer],
            presentation_lut_transformation=hd.PresentationLUTTransformation(presentation_lut_shape=shape),
        )

    def _new_instance(self, series_number: int, series_description: str) -> dict:
        """What both objects say of themselves: a new series and instance (new UIDs), and who made them."""
        hd = require_highdicom()
        return {
            "series_instance_uid": hd.UID(),
            "series_number": series_number,
            "sop_instance_uid": hd.UID(),
            "instance_number": 1,
            "series_description": series_description,
            "manufacturer": MANUFACTURER,
            "manufacturer_model_name": MANUFACTURER,
            "software_versions": self.version,
        }

    def build_sr(self, ref, marks: list[_Mark]):
        """The Comprehensive SR measurement report (TID 1500) with one measurement group per landmark."""
        from pydicom.sr.codedict import codes

        hd = require_highdicom()
        sr = hd.sr
        algorithm = sr.AlgorithmIdentification(
            name=MANUFACTURER, version=self.version, parameters=[f"threshold={self.threshold:g}",
                                                                 f"protocol={self.protocol}"]
        )  # fmt: skip
        peak_code = sr.CodedConcept("PEAK", SCHEME, "Peak heatmap response")
        detected_code = sr.CodedConcept("DETECTED", SCHEME, "Landmark detected")
        frames = [1] if _is_multiframe(ref) else None
        groups = []
        for m in marks:
            common = {
                "tracking_identifier": sr.TrackingIdentifier(uid=m.uid, identifier=m.name),
                "finding_type": codes.SCT.AnatomicalPoint,
                "algorithm_id": algorithm,
                "finding_sites": [sr.FindingSite(sr.CodedConcept(_code_value(m.name), SCHEME, m.name[:64]))],
                "measurements": [
                    sr.Measurement(peak_code, m.peak if np.isfinite(m.peak) else 0.0, codes.UCUM.NoUnits)
                ],  # fmt: skip
                "qualitative_evaluations": [
                    sr.QualitativeEvaluation(detected_code, codes.SCT.Yes if m.detected else codes.SCT.No)
                ],
            }
            if m.detected:
                source = sr.SourceImageForRegion(ref.SOPClassUID, ref.SOPInstanceUID, referenced_frame_numbers=frames)
                region = sr.ImageRegion(sr.GraphicTypeValues.POINT, np.array([[m.col, m.row]]), source)
                groups.append(sr.PlanarROIMeasurementsAndQualitativeEvaluations(referenced_region=region, **common))
            else:
                image = sr.SourceImageForMeasurementGroup(ref.SOPClassUID, ref.SOPInstanceUID,
                                                          referenced_frame_numbers=frames)  # fmt: skip
                groups.append(sr.MeasurementsAndQualitativeEvaluations(source_images=[image], **common))
        device = sr.ObserverContext(
            observer_type=codes.DCM.Device,
            observer_identifying_attributes=sr.DeviceObserverIdentifyingAttributes(
                uid=self.device_uid, name=MANUFACTURER, manufacturer_name=MANUFACTURER, model_name=MANUFACTURER
            ),
        )
        report = sr.MeasurementReport(
            observation_context=sr.ObservationContext(observer_device_context=device),
            procedure_reported=codes.SCT.ImagingProcedure,
            imaging_measurements=groups,
        )
        return sr.ComprehensiveSR(
            evidence=[ref],
            content=report[0],
            **self._new_instance(SR_SERIES_NUMBER, "landmark-afl landmarks (measurement report)"),
            is_complete=True,
            is_final=False,
            is_verified=False,
            coding_schemes=[
                hd.coding_schemes.CodingSchemeIdentificationItem(
                    SCHEME, name="landmark-afl landmark names and detector outputs"
                )
            ],  # fmt: skip
        )


def _code_value(name: str) -> str:
    """A code value for a landmark name (SH: 16 characters; longer names keep their start and a digest)."""
    if len(name) <= 16:
        return name
    import hashlib

    return name[:9] + "~" + hashlib.sha1(name.encode()).hexdigest()[:6]


def _frames(source) -> int:
    """NumberOfFrames as an int (1 when absent or unreadable: a single-frame image that states 1 is single-frame)."""
    try:
        return int(source.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError):
        return 1


def _is_multiframe(ref) -> bool:
    return "SharedFunctionalGroupsSequence" in ref


def _to_bytes(dataset) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
