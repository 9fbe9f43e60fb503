"""BlazeFace full-range (MediaPipe, Apache-2.0) on tiny faces, scored as studies/detection_study.py
scores dlib: the same ground truth (its detection.json), the same shrinking and match rule, the
same eye error. Measured for docs/detection.md; the pack does not use MediaPipe.

    python -m venv mpvenv && mpvenv/bin/pip install --no-deps mediapipe==0.10.14 && \
        mpvenv/bin/pip install "numpy<2" opencv-python-headless "protobuf<5" absl-py attrs flatbuffers pillow matplotlib
    mpvenv/bin/python studies/blazeface_recall.py DIR/detection.json PHOTO [PHOTO ...]

mediapipe 0.10.14 is the newest release checked that ships the model inside the wheel
(mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite, the legacy
`solutions` API, which loads it offline); 1.2.3 ships no model file (its tasks API takes a
downloaded .tflite). BlazeFace reads a 192 px input, so the photo is cut into overlapping tiles
(`tile` = 8 or 16 face widths, half a tile apart) and overlapping detections are merged.
Standalone (no torch, no lpip_core): it runs in its own venv.
"""
import json
import statistics
import sys
import time

import numpy as np
from PIL import Image


def run_tiles(fd, img: Image.Image, tile: int):
    """BlazeFace on overlapping tiles; boxes + eye points in image px; simple NMS."""
    a = np.asarray(img.convert("RGB"))
    H, W = a.shape[:2]
    step = max(1, tile // 2)
    out = []
    for y in range(0, max(1, H - tile // 2), step):
        for x in range(0, max(1, W - tile // 2), step):
            t = np.ascontiguousarray(a[y:y + tile, x:x + tile])
            h, w = t.shape[:2]
            r = fd.process(t)
            for d in r.detections or []:
                b = d.location_data.relative_bounding_box
                kp = d.location_data.relative_keypoints
                box = (x + b.xmin * w, y + b.ymin * h, x + (b.xmin + b.width) * w, y + (b.ymin + b.height) * h)
                eyes = [(x + kp[i].x * w, y + kp[i].y * h) for i in (0, 1)]  # right eye, left eye (subject)
                out.append((d.score[0], box, eyes))
    out.sort(key=lambda o: -o[0])
    keep = []
    for s, b, e in out:
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        if any(k[1][0] <= cx <= k[1][2] and k[1][1] <= cy <= k[1][3] for k in keep):
            continue
        keep.append((s, b, e))
    return keep


def main() -> None:
    import mediapipe as mp

    det_json, photos = sys.argv[1], sys.argv[2:]
    data = json.load(open(det_json))
    fd = mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.3)
    for path in photos:
        name = path.split("/")[-1]
        truth = data[name]["truth_boxes"]
        lms = data[name]["truth_landmarks"]
        photo = Image.open(path).convert("RGB")
        med = statistics.median(b[2] - b[0] for b in truth)
        for width in (10, 12, 14, 16, 24):
            f = width / med
            small = photo.resize((round(photo.width * f), round(photo.height * f)), Image.Resampling.LANCZOS)
            for pre in (1, 2, 4):
                img = small if pre == 1 else small.resize((small.width * pre, small.height * pre), Image.Resampling.LANCZOS)
                scale = img.width / photo.width
                for tile_faces in (8, 16):
                    tile = int(width * pre * tile_faces)
                    t0 = time.perf_counter()
                    found = run_tiles(fd, img, tile)
                    sec = time.perf_counter() - t0
                    used, n, errs = set(), 0, []
                    for g, lm in zip(truth, lms):
                        gc = ((g[0] + g[2]) / 2, (g[1] + g[3]) / 2)
                        for j, (s, b, e) in enumerate(found):
                            if j in used:
                                continue
                            bb = [v / scale for v in b]
                            c = ((bb[0] + bb[2]) / 2, (bb[1] + bb[3]) / 2)
                            if g[0] <= c[0] <= g[2] and g[1] <= c[1] <= g[3] and bb[0] <= gc[0] <= bb[2] and bb[1] <= gc[1] <= bb[3]:
                                used.add(j); n += 1
                                p = np.asarray(lm)
                                gt = np.stack([p[2:4].mean(0), p[0:2].mean(0)])  # image-left eye, image-right eye
                                ee = np.asarray(e) / scale  # mediapipe: subject's right eye (image left) first
                                errs.append(float(np.linalg.norm(ee - gt, axis=1).mean() / np.linalg.norm(gt[0] - gt[1])))
                                break
                    med_err = f"{100 * statistics.median(errs):.0f} %" if errs else "-"
                    print(f"{name} {width} px x{pre} tile {tile_faces}x face: {n}/{len(truth)} found, "
                          f"{len(found) - len(used)} false, eye error {med_err}, {sec:.1f} s", flush=True)


if __name__ == "__main__":
    main()
