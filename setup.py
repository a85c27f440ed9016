"""Build hook: the wheel carries the repository's ``protocols/*.yaml`` as ``landmark_afl/protocol_files``.

``protocols/`` at the top of the repository stays the one place the protocol files are edited; an editable install
reads them there, an installed wheel from the package (``landmark_afl.protocols.protocols_dir``). Everything else
is configured in pyproject.toml.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildPyWithProtocols(build_py):
    """``build_py`` that also copies ``protocols/*.yaml`` into ``landmark_afl/protocol_files/`` of the build."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads protocols/ in place
        target = Path(self.build_lib) / "landmark_afl" / "protocol_files"
        self.mkpath(str(target))
        files = sorted((ROOT / "protocols").glob("*.yaml"))
        if not files:
            raise RuntimeError(f"no protocol files in {ROOT / 'protocols'}: the wheel would not be able to train")
        for path in files:
            self.copy_file(str(path), str(target / path.name))


setup(cmdclass={"build_py": BuildPyWithProtocols})
