"""Write the held-out splits (models/holdout.txt, models/holdout-pixabay.txt) from the face data.

Every face of ../shared/faces/aligned512 and ../shared/faces/pixabay/aligned512 gets a dlib identity
descriptor and a perceptual hash; faces are grouped by person (lpip_core.data.split), and the
holdout is: the groups of the earlier held-out faces and of every face of the 1927 Solvay photo
(the demo photo), then 40 men's and 40 women's Pixabay faces in whole groups, seed 0. Faces listed
in models/excluded-pixabay.txt (never trained on, see there why) are left out of the split too.

    python -m tools.make_holdout [--faces ../shared/faces]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from lpip_core.data.folders import list_images
from lpip_core.data.split import perceptual_hash, person_groups, read_split, stratified_holdout
from lpip_core.faces.identity import face_descriptor
from lpip_core.files import read_image
from lpip_core.resize import resize

MODELS = Path(__file__).resolve().parents[1] / "models"
EARLIER = read_split(Path(__file__).with_name("holdout_2026-11.txt"))  # the 24 held out before the Pixabay faces
DEMO_PHOTO = "solvay_conference_1927_"
PER_SEX, SEED = 40, 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", default=str(Path(__file__).resolve().parents[2] / "shared" / "faces"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    folders = {"aligned512": Path(args.faces) / "aligned512", "pixabay": Path(args.faces) / "pixabay" / "aligned512"}
    excluded = read_split(MODELS / "excluded-pixabay.txt")
    names, descriptors, hashes = [], [], []
    start = time.monotonic()
    for key, folder in folders.items():
        for path in list_images(folder):
            if key == "pixabay" and path.name in excluded:
                continue
            image = read_image(path)
            names.append(f"{key}/{path.name}")
            descriptors.append(face_descriptor(resize(image, (300, 300)))[0])
            hashes.append(perceptual_hash(image))
    groups = person_groups(torch.stack(descriptors), torch.stack(hashes))
    forced = {n for n in names if n.split("/")[1] in EARLIER or n.split("/")[1].startswith(DEMO_PHOTO)}
    sex = {"m_": "man", "w_": "woman"}
    held = stratified_holdout(names, groups, per_stratum=PER_SEX, seed=SEED, forced=forced,
                              stratum=lambda n: sex.get(n.split("/")[1][:2]) if n.startswith("pixabay/") else None)
    print(f"{len(names)} faces, {len(groups)} person groups, {time.monotonic() - start:.0f} s")
    for key, out in (("aligned512", "holdout.txt"), ("pixabay", "holdout-pixabay.txt")):
        write(MODELS / out, key, names, groups, held)


def write(path: Path, key: str, names, groups, held) -> None:
    lines = [f"# Held-out evaluation faces of ../shared/faces/{'pixabay/' if key == 'pixabay' else ''}aligned512: "
             "never trained on. Written by tools/make_holdout.py;",
             "# faces are grouped by person (dlib descriptor distance < 0.45, or a perceptual hash within 8 bits),",
             "# and a group is held out whole. One group per paragraph."]
    for group in groups:
        members = [names[i] for i in group]
        if not any(m in held for m in members) or not any(m.startswith(key + "/") for m in members):
            continue
        lines.append("")
        others = [m for m in members if not m.startswith(key + "/")]
        if others:
            lines.append(f"# same group as {', '.join(others)}")
        lines += [m.split("/", 1)[1] for m in members if m.startswith(key + "/")]
    path.write_text("\n".join(lines) + "\n")
    print(f"{path.name}: {sum(1 for line in lines if line and not line.startswith('#'))} faces")


if __name__ == "__main__":
    main()
