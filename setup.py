"""The optional C kernels: xact works without them (pure Python fallback)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "xact._fastpaths._ckernel",
            sources=[
                "src/xact/_fastpaths/_ckernel.c",
                "src/xact/_fastpaths/_ckernel_avx512.c",
            ],
            depends=["src/xact/_fastpaths/_ckernel.h"],
            # TwoSum and the exp's argument reduction need every operation
            # rounded as written: no fused multiply-adds, no reassociation.
            extra_compile_args=["-O3", "-ffp-contract=off", "-fno-fast-math", "-fno-trapping-math", "-fopenmp-simd"],
            optional=True,
        )
    ]
)
