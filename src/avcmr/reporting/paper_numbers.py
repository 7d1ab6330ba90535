"""The seed paper's published numbers (METHODS.md, "The paper's numbers"), printed beside ours.

Never used to tune anything. Keys are this project's method names. MAP triples are
(a→v, v→a, avg); Table 3 is training minutes on VEGAS on the paper's GPU.
"""

from __future__ import annotations

REFERENCE_DATASETS = ("vegas", "ave")

TABLE2 = {
    "vegas": {
        "random": (0.110, 0.109, 0.109), "cca": (0.332, 0.327, 0.330), "kcca": (0.288, 0.273, 0.281),
        "dcca": (0.478, 0.457, 0.468), "c_cca": (0.711, 0.704, 0.708), "c_dcca": (0.722, 0.716, 0.719),
        "ugach": (0.182, 0.179, 0.181), "agah": (0.578, 0.568, 0.573), "ucal": (0.446, 0.436, 0.441),
        "acmr": (0.465, 0.442, 0.454), "dscmr": (0.732, 0.721, 0.727), "tnn_c_cca": (0.751, 0.738, 0.745),
        "ours": (0.797, 0.779, 0.788),
    },
    "ave": {
        "random": (0.127, 0.124, 0.126), "cca": (0.190, 0.189, 0.190), "kcca": (0.133, 0.135, 0.134),
        "dcca": (0.221, 0.223, 0.222), "c_cca": (0.228, 0.226, 0.227), "c_dcca": (0.230, 0.227, 0.229),
        "ugach": (0.165, 0.159, 0.162), "agah": (0.200, 0.196, 0.198), "ucal": (0.153, 0.150, 0.152),
        "acmr": (0.162, 0.159, 0.161), "dscmr": (0.314, 0.256, 0.285), "tnn_c_cca": (0.253, 0.258, 0.256),
        "ours": (0.337, 0.279, 0.308),
    },
}  # fmt: skip

TABLE4 = {
    "vegas": {
        "explicit": (0.687, 0.692, 0.690), "implicit": (0.614, 0.622, 0.618),
        "ex_im_share": (0.781, 0.773, 0.777), "ours": TABLE2["vegas"]["ours"],
    },
    "ave": {
        "explicit": (0.232, 0.244, 0.238), "implicit": (0.222, 0.263, 0.242),
        "ex_im_share": (0.278, 0.243, 0.261), "ours": TABLE2["ave"]["ours"],
    },
}  # fmt: skip

TABLE3_MINUTES = {
    "vegas": {
        "random": 0.04, "cca": 1.08, "kcca": 2.03, "c_cca": 1.24, "dcca": 5.15, "c_dcca": 18.56,
        "dscmr": 22.05, "acmr": 176.7, "tnn_c_cca": 192.00, "explicit": 6.15, "implicit": 6.77, "ours": 8.36,
    },
}  # fmt: skip


def paper_reference(dataset: str, declared: str | None = None) -> str | None:
    """Which of the paper's datasets a results folder is compared with: the declared
    ``paper_reference``, else the dataset's own name when it is vegas or ave, else None."""
    if declared is not None:
        if declared not in REFERENCE_DATASETS:
            raise ValueError(f"paper_reference must be one of {REFERENCE_DATASETS}, got {declared!r}")
        return declared
    return dataset if dataset in REFERENCE_DATASETS else None
