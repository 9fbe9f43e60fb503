"""Face tools around the method: detection and FFHQ alignment (`detect`), affine resampling
(`warp`), paste-back (`paste`) and the dlib identity embedding behind ID Sim (`identity`)."""
