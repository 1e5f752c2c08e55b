"""Write the small intersphinx inventories in this folder.

The documentation is built where the network is closed, so intersphinx cannot
download the ``objects.inv`` of NumPy, SciPy, PyTorch, JAX, Dask, the array API
standard or Python. Instead this script writes, with :mod:`sphobjinv`, one
inventory per project that holds exactly the external names the xact
documentation links to, each mapped to its page in that project's real
documentation (the same URL the project's own inventory gives). ``conf.py``
points ``intersphinx_mapping`` at these files.

When a page or docstring links a new external name (``:func:`torch.xyz```),
add it to ``OBJECTS`` below and run::

    python docs/_inventories/make_inventories.py

A name missing here fails the docs build (``-n -W``), so a link can never
silently point nowhere; the URLs are checked by hand against the projects'
published documentation when they are added.
"""

from __future__ import annotations

from pathlib import Path

import sphobjinv as soi

HERE = Path(__file__).resolve().parent

# project -> (base URL, version, [(domain:role, name, URI relative to base)])
# A URI ending in "$" is completed with the name, as in Sphinx inventories.
OBJECTS: dict[str, tuple[str, str, list[tuple[str, str, str]]]] = {
    "python": (
        "https://docs.python.org/3/",
        "3",
        [
            ("py:exception", "TypeError", "library/exceptions.html#$"),
            ("py:exception", "ValueError", "library/exceptions.html#$"),
            ("py:class", "types.ModuleType", "library/types.html#$"),
            ("py:data", "typing.Any", "library/typing.html#$"),
        ],
    ),
    "numpy": (
        "https://numpy.org/doc/stable/",
        "stable",
        [
            ("py:class", "numpy.ndarray", "reference/generated/numpy.ndarray.html#$"),
            ("py:data", "numpy.logaddexp", "reference/generated/numpy.logaddexp.html#$"),
            ("py:function", "numpy.nextafter", "reference/generated/numpy.nextafter.html#$"),
            ("py:function", "numpy.spacing", "reference/generated/numpy.spacing.html#$"),
        ],
    ),
    "scipy": (
        "https://docs.scipy.org/doc/scipy/",
        "stable",
        [
            (
                "py:function",
                f"scipy.special.{name}",
                f"reference/generated/scipy.special.{name}.html#$",
            )
            for name in ("logsumexp", "softmax", "log_softmax", "expit", "log_expit")
        ],
    ),
    "torch": (
        "https://docs.pytorch.org/docs/stable/",
        "stable",
        [
            ("py:class", "torch.Tensor", "tensors.html#$"),
            ("py:function", "torch.logsumexp", "generated/torch.logsumexp.html#$"),
            ("py:function", "torch.sigmoid", "generated/torch.sigmoid.html#$"),
            ("py:function", "torch.logit", "generated/torch.logit.html#$"),
            ("py:function", "torch.compile", "generated/torch.compile.html#$"),
            ("py:module", "torch.nn.functional", "nn.functional.html#module-$"),
        ]
        + [
            ("py:function", f"torch.nn.functional.{name}", "generated/$.html#$")
            for name in (
                "softmax",
                "log_softmax",
                "softmin",
                "logsigmoid",
                "softplus",
                "cross_entropy",
                "nll_loss",
                "binary_cross_entropy_with_logits",
                "kl_div",
            )
        ],
    ),
    "jax": (
        "https://docs.jax.dev/en/latest/",
        "latest",
        [
            ("py:class", "jax.Array", "_autosummary/$.html#$"),
            ("py:function", "jax.jit", "_autosummary/$.html#$"),
            ("py:module", "jax.nn", "jax.nn.html#module-$"),
            ("py:function", "jax.grad", "_autosummary/$.html#$"),
            ("py:function", "jax.nn.softmax", "_autosummary/$.html#$"),
            ("py:function", "jax.nn.log_softmax", "_autosummary/$.html#$"),
            ("py:function", "jax.nn.sigmoid", "_autosummary/$.html#$"),
            ("py:function", "jax.nn.log_sigmoid", "_autosummary/$.html#$"),
            ("py:function", "jax.nn.softplus", "_autosummary/$.html#$"),
            ("py:function", "jax.nn.logmeanexp", "_autosummary/$.html#$"),
            ("py:function", "jax.nn.log1mexp", "_autosummary/$.html#$"),
            ("py:function", "jax.scipy.special.logsumexp", "_autosummary/$.html#$"),
        ],
    ),
    "dask": (
        "https://docs.dask.org/en/stable/",
        "stable",
        [
            ("py:class", "dask.array.Array", "generated/$.html#$"),
            ("py:function", "dask.array.from_array", "generated/$.html#$"),
            ("py:method", "dask.array.Array.persist", "generated/$.html#$"),
        ],
    ),
    "distributed": (
        "https://distributed.dask.org/en/stable/",
        "stable",
        [
            ("py:class", "distributed.Client", "api.html#$"),
            ("py:class", "distributed.LocalCluster", "api.html#$"),
        ],
    ),
    "array-api": (
        "https://data-apis.org/array-api/latest/",
        "latest",
        [
            (
                "py:function",
                f"array_api.{name}",
                f"API_specification/generated/array_api.{name}.html#$",
            )
            for name in ("exp", "log1p", "logaddexp", "max", "sum", "where")
        ],
    ),
    "array-api-compat": (
        "https://data-apis.org/array-api-compat/",
        "latest",
        [
            ("py:function", "array_api_compat.array_namespace", "helper-functions.html#$"),
            ("py:function", "array_api_compat.device", "helper-functions.html#$"),
            ("py:module", "array_api_compat", "index.html"),
        ],
    ),
    "cupy": (
        "https://docs.cupy.dev/en/stable/",
        "stable",
        [("py:class", "cupy.ndarray", "reference/generated/$.html#$")],
    ),
}


def build(project: str, version: str, objects: list[tuple[str, str, str]]) -> soi.Inventory:
    inv = soi.Inventory()
    inv.project = project
    inv.version = version
    for role, name, uri in objects:
        domain, kind = role.split(":")
        if uri.endswith("$") and uri.count("$") > 1:
            # "generated/$.html#$": expand the page part ourselves.
            head, _, _ = uri.rpartition("#")
            uri = head.replace("$", name) + "#$"
        inv.objects.append(
            soi.DataObjStr(name=name, domain=domain, role=kind, priority="1", uri=uri, dispname="-")
        )
    return inv


def main() -> None:
    for project, (_base, version, objects) in OBJECTS.items():
        inv = build(project, version, objects)
        path = HERE / f"{project}.inv"
        soi.writebytes(path, soi.compress(inv.data_file(contract=True)))
        print(f"{path.relative_to(HERE.parent.parent)}: {len(objects)} objects")


if __name__ == "__main__":
    main()
