"""The optional C kernels: xact works without them (pure Python fallback)."""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CompileError, LinkError

# TwoSum and the exp's argument reduction need every operation rounded as
# written: no fused multiply-adds, no reassociation.
FLAGS = ["-O3", "-ffp-contract=off", "-fno-fast-math", "-fno-trapping-math"]
OPENMP = ["-fopenmp"]


class BuildExt(build_ext):
    """With OpenMP where the compiler has it (the rows of a large call split
    over threads in C), else without (they split over Python threads)."""

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except (CompileError, LinkError):  # no OpenMP here
            ext.extra_compile_args = [f for f in ext.extra_compile_args if f not in OPENMP]
            ext.extra_compile_args.append("-fopenmp-simd")
            ext.extra_link_args = [f for f in ext.extra_link_args if f not in OPENMP]
            super().build_extension(ext)


setup(
    ext_modules=[
        Extension(
            "xact._fastpaths._ckernel",
            sources=[
                "src/xact/_fastpaths/_ckernel.c",
                "src/xact/_fastpaths/_ckernel_avx512.c",
            ],
            depends=["src/xact/_fastpaths/_ckernel.h", "src/xact/_fastpaths/_xla_ffi.h"],
            extra_compile_args=FLAGS + OPENMP,
            extra_link_args=list(OPENMP),
            optional=True,
        )
    ],
    cmdclass={"build_ext": BuildExt},
)
