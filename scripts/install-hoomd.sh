#!/usr/bin/env bash
# Build HOOMD-blue (MD component, double precision; CPU, or GPU where CUDA and a GPU are found) from source
# and install it into the active virtualenv, through a cache outside the repository so that a second
# install on the same machine takes seconds.
#
# HOOMD-blue is not on PyPI. This script is the pip-only path (no conda): see docs/engines.md.
#
#   scripts/install-hoomd.sh                      # online: clones the tag with its submodules, builds, installs
#   scripts/install-hoomd.sh --source DIR         # offline: a hoomd-blue tree at the tag, submodules in place
#   scripts/install-hoomd.sh --mirrors DIR        # offline: assemble that tree from local git mirrors
#   scripts/install-hoomd.sh --cache-only         # install from the cache or exit 3 (CI)
#
# Options:
#   --source DIR     hoomd-blue source tree at v$HOOMD_VERSION with every submodule at its pinned commit
#   --mirrors DIR    directory of git repositories (DIR/<owner>+<name>/repo, DIR/<owner>/<name>.git,
#                    DIR/<name>.git or DIR/<name>) to clone hoomd-blue and its submodules from
#   --gpu auto|on|off  GPU build: auto (default) = on when nvcc is found AND nvidia-smi lists a GPU
#   --jobs N         parallel compile jobs (default: number of cores)
#   --nice N         compile at this niceness (default 0; 19 on a shared machine)
#   --cache-only     never build: install from the cache, or exit 3 when the cache holds no build
#   --rebuild        ignore a cached build (the build directory is kept: make rebuilds what changed)
#   --no-install     build (or find) the cached package but do not install it into the virtualenv
#   --print-key      print the cache directory of this configuration and exit
#   --prepare-only   check the build tools, assemble and verify the source tree, then stop
#
# Environment: GLASSPIPE_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/glasspipe), PYTHON (default: python
# of the active virtualenv), CXX, EIGEN3_DIR (directory holding Eigen3Config.cmake), CUDA_HOME.
#
# Cache layout, under $GLASSPIPE_CACHE/hoomd/:
#   src/v<version>/                 the source tree assembled by --mirrors or cloned online
#   build/<key>/                    the CMake build directory (kept: an interrupted build resumes)
#   <key>/prefix/hoomd/             the installed package; <key>/BUILD_INFO; <key>/COMPLETE (written last)
# with <key> = <version>-cp<python>-<cpu|gpu>-md-double, e.g. 4.8.2-cp311-cpu-md-double.
set -euo pipefail

HOOMD_VERSION=4.8.2
HOOMD_URL=https://github.com/glotzerlab/hoomd-blue.git

# Submodules the v4.8.2 build needs: path, pinned commit (git ls-tree v4.8.2 <path>), a file HOOMD's
# CMakeLists checks for, and where to get it (owner/name on GitHub; the first that has the commit wins:
# the glotzerlab/quickhull fork lacks its pinned commit in some snapshots, akuukka/quickhull has it).
SUBMODULES=(
    "hoomd/extern/upp11 0c1fb8dfb4bcdc1c5c4eff9165539b15e70c4360 upp11.h glotzerlab/upp11"
    "hoomd/extern/nano-signal-slot 34223a4a7e97f8e114ef007e5360cf7a71265da3 nano_signal_slot.hpp glotzerlab/nano-signal-slot"
    "hoomd/extern/random123 a2c4f04f981ebf81b0bbfbf35256dda1224b40fe include/Random123/philox.h glotzerlab/random123"
    "hoomd/extern/HIP d211f99eebb3637b6840f310f8797abb25012c18 include/hip/hip_runtime.h glotzerlab/HIP"
    "hoomd/extern/neighbor ba0f06869b766066a7068852fa3b8c5fa746f71f include/neighbor/neighbor.h mphowardlab/neighbor"
    "hoomd/extern/hipper b6da049a516ada03e4e1b66ca6b4c2c7c9668595 include/hipper/hipper_runtime.h mphowardlab/hipper"
    "hoomd/extern/quickhull 1ffbc6f884ea1da89e104a5996cf8a726db673d5 ConvexHull.hpp glotzerlab/quickhull,akuukka/quickhull"
)
SUBMODULE_GPU="hoomd/extern/hipCUB c70e19332a8402049b3359b409e50220a759c42d hipcub/include/hipcub/hipcub.hpp glotzerlab/hipCUB"

die() {
    echo "install-hoomd: error: $*" >&2
    exit 1
}
say() { echo "install-hoomd: $*"; }

source_dir="" mirrors="" gpu=auto jobs="" niceness=0 cache_only=0 rebuild=0 install=1 print_key=0 prepare_only=0
while [ $# -gt 0 ]; do
    case "$1" in
    --source) source_dir=${2:?--source needs a directory}; shift 2 ;;
    --mirrors) mirrors=${2:?--mirrors needs a directory}; shift 2 ;;
    --gpu) gpu=${2:?--gpu needs auto, on or off}; shift 2 ;;
    --jobs) jobs=${2:?--jobs needs a number}; shift 2 ;;
    --nice) niceness=${2:?--nice needs a number}; shift 2 ;;
    --cache-only) cache_only=1; shift ;;
    --rebuild) rebuild=1; shift ;;
    --no-install) install=0; shift ;;
    --print-key) print_key=1; shift ;;
    --prepare-only) prepare_only=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
    esac
done
case "$gpu" in auto | on | off) ;; *) die "--gpu must be auto, on or off, not '$gpu'" ;; esac
[[ "$jobs" =~ ^[0-9]*$ ]] || die "--jobs must be a number, not '$jobs'"
[[ "$niceness" =~ ^[0-9]+$ ]] || die "--nice must be a number from 0 to 19, not '$niceness'"

# --- the Python to build for and install into ------------------------------------------------------------
if [ -n "${PYTHON:-}" ]; then
    python=$PYTHON
elif [ -n "${VIRTUAL_ENV:-}" ]; then
    python=$VIRTUAL_ENV/bin/python
else
    die "no virtualenv is active: activate the one to install HOOMD-blue into (. .venv/bin/activate) or set PYTHON"
fi
[ -x "$python" ] || command -v "$python" >/dev/null || die "Python '$python' not found"
pytag=$("$python" -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")') ||
    die "'$python' does not run"
site=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')

# --- build options and the cache key ----------------------------------------------------------------------
nvcc=""
if command -v nvcc >/dev/null 2>&1; then
    nvcc=$(command -v nvcc)
elif [ -n "${CUDA_HOME:-}" ] && [ -x "$CUDA_HOME/bin/nvcc" ]; then
    nvcc=$CUDA_HOME/bin/nvcc
fi
if [ "$gpu" = auto ]; then
    # nvcc alone is not enough: a GPU build on a machine without a GPU cannot be tested there.
    if [ -n "$nvcc" ] && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q GPU; then
        gpu=on
    else
        gpu=off
    fi
fi
if [ "$gpu" = on ] && [ -z "$nvcc" ]; then
    die "--gpu on but no CUDA compiler: nvcc is not on PATH nor in \$CUDA_HOME/bin (install the CUDA toolkit)"
fi
platform=$([ "$gpu" = on ] && echo gpu || echo cpu)
key="$HOOMD_VERSION-cp$pytag-$platform-md-double"
cache_root=${GLASSPIPE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/glasspipe}/hoomd
cached=$cache_root/$key
build_dir=$cache_root/build/$key
if [ "$print_key" = 1 ]; then
    echo "$cached"
    exit 0
fi

# --- install a cached build into the virtualenv -----------------------------------------------------------
install_cached() {
    local target=$site/hoomd staging=$site/.hoomd-installing.$$ dist="$site/hoomd-$HOOMD_VERSION.dist-info"
    rm -rf "$staging" "$site"/hoomd-*.dist-info
    cp -a "$cached/prefix/hoomd" "$staging"
    rm -rf "$target"
    mv "$staging" "$target"
    # Distribution metadata: pip list / pip uninstall hoomd and importlib.metadata.version("hoomd") see it.
    mkdir -p "$dist"
    printf 'Metadata-Version: 2.1\nName: hoomd\nVersion: %s\nSummary: HOOMD-blue %s (%s), built from source by glasspipe scripts/install-hoomd.sh\n' \
        "$HOOMD_VERSION" "$HOOMD_VERSION" "$key" >"$dist/METADATA"
    echo "glasspipe-install-hoomd" >"$dist/INSTALLER"
    (cd "$site" && find hoomd "hoomd-$HOOMD_VERSION.dist-info" -type f -printf '%p,,\n' >"$dist/RECORD.tmp" &&
        echo "hoomd-$HOOMD_VERSION.dist-info/RECORD,," >>"$dist/RECORD.tmp" && mv "$dist/RECORD.tmp" "$dist/RECORD")
    # Check what was installed, in a fresh interpreter (outside any source tree named hoomd).
    local check
    check=$(cd / && "$python" -c 'import hoomd, hoomd.md; v = hoomd.version
print(v.version, v.floating_point_precision, v.md_built, v.gpu_enabled)') ||
        die "the installed HOOMD-blue does not import (see above); remove $cached and run again to rebuild"
    case "$check" in
    "$HOOMD_VERSION (64, 64) True "*) ;;
    *) die "installed HOOMD-blue reports '$check', expected '$HOOMD_VERSION (64, 64) True <gpu>'" ;;
    esac
    say "installed HOOMD-blue $HOOMD_VERSION ($key) into $target from the cache $cached"
}

if [ "$rebuild" = 0 ] && [ "$prepare_only" = 0 ] && [ -f "$cached/COMPLETE" ]; then
    say "cached build found: $cached"
    [ "$install" = 1 ] && install_cached
    exit 0
fi
if [ "$cache_only" = 1 ]; then
    say "no cached build of HOOMD-blue $HOOMD_VERSION ($key) in $cache_root"
    exit 3
fi

# --- build tools: report every missing one, with how to get it --------------------------------------------
missing=()
if ! command -v cmake >/dev/null 2>&1; then
    missing+=("cmake (>= 3.15): pip install cmake, or apt-get install cmake")
else
    cmake_version=$(cmake --version | head -n 1 | grep -o '[0-9][0-9.]*' | head -n 1)
    if [ "$(printf '3.15\n%s\n' "$cmake_version" | sort -V | head -n 1)" != 3.15 ]; then
        missing+=("cmake >= 3.15 (cmake $cmake_version found): pip install cmake")
    fi
fi
cxx=${CXX:-}
if [ -z "$cxx" ]; then
    for candidate in c++ g++ clang++; do
        if command -v "$candidate" >/dev/null 2>&1; then cxx=$(command -v "$candidate") && break; fi
    done
fi
if [ -z "$cxx" ] || ! command -v "$cxx" >/dev/null 2>&1; then
    missing+=("a C++17 compiler (c++, g++ or clang++; or set CXX): apt-get install g++, or dnf install gcc-c++")
fi
pybind11_version=$("$python" -c 'import pybind11; print(pybind11.__version__)' 2>/dev/null || true)
if [ -z "$pybind11_version" ]; then
    missing+=("pybind11 (>= 2.12, < 3) in $python: pip install 'pybind11>=2.12,<3'")
elif ! "$python" - "$pybind11_version" <<'EOF'; then
import sys
major, minor = (int(x) for x in sys.argv[1].split(".")[:2])
sys.exit(0 if (major, minor) >= (2, 12) and major < 3 else 1)
EOF
    missing+=("pybind11 >= 2.12 and < 3 (HOOMD-blue $HOOMD_VERSION does not build with pybind11 3; $pybind11_version found): pip install 'pybind11>=2.12,<3'")
fi
eigen_dir=""
for dir in ${EIGEN3_DIR:-} ${CONDA_PREFIX:+$CONDA_PREFIX/share/eigen3/cmake} ${VIRTUAL_ENV:+$VIRTUAL_ENV/share/eigen3/cmake} \
    /usr/share/eigen3/cmake /usr/local/share/eigen3/cmake /usr/lib/cmake/eigen3 /usr/lib64/cmake/eigen3 \
    /usr/local/lib/cmake/eigen3 /opt/homebrew/share/eigen3/cmake; do
    if [ -f "$dir/Eigen3Config.cmake" ]; then eigen_dir=$dir && break; fi
done
if [ -z "$eigen_dir" ]; then
    missing+=("the Eigen 3 headers (Eigen3Config.cmake): apt-get install libeigen3-dev, dnf install eigen3-devel or brew install eigen; or set EIGEN3_DIR to the directory holding Eigen3Config.cmake")
fi
if ! command -v git >/dev/null 2>&1 && [ -z "$source_dir" ]; then
    missing+=("git (to clone the sources): apt-get install git, or pass --source DIR")
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "install-hoomd: cannot build HOOMD-blue $HOOMD_VERSION; missing build tools:" >&2
    for item in "${missing[@]}"; do echo "  - $item" >&2; done
    exit 1
fi

# --- the source tree ----------------------------------------------------------------------------------------
submodules=("${SUBMODULES[@]}")
[ "$gpu" = on ] && submodules+=("$SUBMODULE_GPU")

mirror_of() { # owner/name -> a local git repository, or nothing
    local owner=${1%%/*} name=${1##*/} dir
    for dir in "$mirrors/$owner+$name/repo" "$mirrors/$owner/$name.git" "$mirrors/$owner/$name" "$mirrors/$name.git" "$mirrors/$name"; do
        if git --git-dir="$dir" rev-parse --git-dir >/dev/null 2>&1 || git -C "$dir" rev-parse --git-dir >/dev/null 2>&1; then
            echo "$dir" && return 0
        fi
    done
    return 1
}

# Clone hoomd-blue at the tag into $1 and put each submodule at its pinned commit, trying each source.
assemble_source() {
    local dest=$1 tmp=$1.partial url entry path commit check repos repo got
    rm -rf "$tmp"
    mkdir -p "$(dirname "$dest")"
    if [ -n "$mirrors" ]; then
        url=$(mirror_of glotzerlab/hoomd-blue) || die "no hoomd-blue repository under --mirrors $mirrors (looked for glotzerlab+hoomd-blue/repo, glotzerlab/hoomd-blue.git, hoomd-blue.git, hoomd-blue)"
        git clone --quiet --shared --no-checkout "$url" "$tmp"
        git -C "$tmp" -c advice.detachedHead=false checkout --quiet "v$HOOMD_VERSION" ||
            die "the hoomd-blue repository $url has no tag v$HOOMD_VERSION"
    else
        say "cloning $HOOMD_URL at v$HOOMD_VERSION"
        git clone --quiet --depth 1 --branch "v$HOOMD_VERSION" "$HOOMD_URL" "$tmp" ||
            die "cannot clone $HOOMD_URL (offline? pass --source DIR or --mirrors DIR)"
    fi
    for entry in "${submodules[@]}"; do
        read -r path commit check repos <<<"$entry"
        got=0
        for repo in ${repos//,/ }; do
            if [ -n "$mirrors" ]; then
                url=$(mirror_of "$repo") || continue
            else
                url=https://github.com/$repo.git
            fi
            git -C "$tmp" config "submodule.$path.url" "$url"
            rm -rf "${tmp:?}/$path" && mkdir -p "$tmp/$path"
            if git -C "$tmp" -c protocol.file.allow=always submodule --quiet update --init -- "$path" >/dev/null 2>&1; then
                got=1 && break
            fi
            rm -rf "${tmp:?}/.git/modules/$path" # the failed clone, so that the next source starts afresh
            say "$repo does not provide $path at $commit; trying the next source"
        done
        [ "$got" = 1 ] || die "cannot get submodule $path at commit $commit from ${repos//,/ or } ${mirrors:+under $mirrors}"
    done
    mv "$tmp" "$dest"
}

# Every submodule there, at the commit the tree pins: CMake's own check only looks for one file each.
verify_source() {
    local src=$1 entry path commit check repos head pinned bad=0
    [ -f "$src/CMakeLists.txt" ] || die "$src is not a hoomd-blue source tree (no CMakeLists.txt)"
    grep -q "set(HOOMD_VERSION_RAW \"$HOOMD_VERSION\")" "$src/CMakeLists.txt" ||
        die "$src is not hoomd-blue $HOOMD_VERSION (CMakeLists.txt: $(grep -o 'HOOMD_VERSION_RAW "[^"]*"' "$src/CMakeLists.txt" || echo 'no HOOMD_VERSION_RAW'))"
    for entry in "${submodules[@]}"; do
        read -r path commit check repos <<<"$entry"
        if [ -d "$src/.git" ] || [ -f "$src/.git" ]; then
            pinned=$(git -C "$src" ls-tree HEAD "$path" | awk '{print $3}')
            if [ -n "$pinned" ] && [ "$pinned" != "$commit" ]; then
                echo "  - $path: the tree pins $pinned, this script expects $commit (is the tree at v$HOOMD_VERSION?)" >&2
                bad=1
                continue
            fi
        fi
        if [ ! -f "$src/$path/$check" ]; then
            echo "  - $path: missing ($path/$check not found); get it at commit $commit from https://github.com/${repos//,/ or https://github.com/}" >&2
            bad=1
            continue
        fi
        head=$(git -C "$src/$path" rev-parse HEAD 2>/dev/null || true)
        if [ -n "$head" ] && [ "$(git -C "$src/$path" rev-parse --show-toplevel 2>/dev/null)" = "$(cd "$src/$path" && pwd -P)" ]; then
            if [ "$head" != "$commit" ]; then
                echo "  - $path: at commit $head, the tree pins $commit (git -C $src submodule update $path)" >&2
                bad=1
            fi
        else
            say "warning: $path is not a git checkout; its files are there but its commit cannot be checked"
        fi
    done
    [ "$bad" = 0 ] || die "the source tree $src is incomplete (see above)"
    say "source tree $src: hoomd-blue $HOOMD_VERSION, ${#submodules[@]} submodules at their pinned commits"
}

if [ -n "$source_dir" ]; then
    [ -d "$source_dir" ] || die "--source $source_dir is not a directory"
    src=$(cd "$source_dir" && pwd -P)
else
    src=$cache_root/src/v$HOOMD_VERSION
    if [ ! -f "$src/CMakeLists.txt" ]; then
        assemble_source "$src"
    elif [ "$gpu" = on ]; then
        read -r path _ check _ <<<"$SUBMODULE_GPU"
        if [ ! -f "$src/$path/$check" ]; then # a CPU build's tree: add hipCUB
            rm -rf "$src" && assemble_source "$src"
        fi
    fi
fi
verify_source "$src"
[ "$prepare_only" = 1 ] && exit 0

# --- configure, build, install into the cache -------------------------------------------------------------
gpu_flags=(-DENABLE_GPU=off)
[ "$gpu" = on ] && gpu_flags=(-DENABLE_GPU=on -DHOOMD_GPU_PLATFORM=CUDA "-DCMAKE_CUDA_COMPILER=$nvcc")
mkdir -p "$build_dir"
log=$build_dir/build.log
say "configuring in $build_dir (log: $log)"
if ! cmake -S "$src" -B "$build_dir" \
    -DCMAKE_BUILD_TYPE=Release \
    "-DCMAKE_CXX_COMPILER=$cxx" \
    "-DCMAKE_INSTALL_PREFIX=$cached/prefix" \
    "-DPython_EXECUTABLE=$(command -v "$python")" \
    "-Dpybind11_DIR=$("$python" -m pybind11 --cmakedir)" \
    "-DEigen3_DIR=$eigen_dir" \
    "${gpu_flags[@]}" \
    -DENABLE_MPI=off -DENABLE_TBB=off -DENABLE_LLVM=off \
    -DBUILD_MD=on -DBUILD_HPMC=off -DBUILD_METAL=off -DBUILD_MPCD=off -DBUILD_TESTING=off -DPLUGINS="" \
    -DHOOMD_LONGREAL_SIZE=64 -DHOOMD_SHORTREAL_SIZE=64 >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "cmake configure failed (full log: $log)"
fi
jobs=${jobs:-$(nproc 2>/dev/null || echo 2)}
say "compiling with $jobs jobs at niceness $niceness (20-40 min on 2 cores for the CPU build; log: $log)"
start=$(date +%s)
if ! nice -n "$niceness" cmake --build "$build_dir" -j "$jobs" >>"$log" 2>&1; then
    grep -m 20 -E "error|Error" "$log" >&2 || tail -n 30 "$log" >&2
    die "the build failed (full log: $log; run again to resume it)"
fi
seconds=$(($(date +%s) - start))
rm -rf "$cached"
cmake --install "$build_dir" >>"$log" 2>&1 || die "cmake --install failed (log: $log)"
[ -f "$cached/prefix/hoomd/__init__.py" ] || die "cmake --install left no hoomd package in $cached/prefix"
{
    echo "version=$HOOMD_VERSION"
    echo "key=$key"
    echo "python=$("$python" -c 'import sys; print(sys.version.split()[0])')"
    echo "compiler=$("$cxx" --version | head -n 1)"
    echo "gpu=$gpu${nvcc:+ (nvcc $nvcc)}"
    echo "source=$src"
    echo "build_seconds=$seconds (this invocation; a resumed build counts only its last part)"
    echo "jobs=$jobs"
    echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"$cached/BUILD_INFO"
touch "$cached/COMPLETE" # written last: a killed install leaves no cache entry that looks complete
say "built HOOMD-blue $HOOMD_VERSION in ${seconds}s; cached in $cached"
[ "$install" = 1 ] && install_cached
exit 0
