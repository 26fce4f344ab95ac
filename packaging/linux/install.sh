#!/bin/sh
# Install a Krea Desktop bundle for the current user, under ~/.local, no root needed:
#   ~/.local/opt/krea-desktop/versions/<BUILD_ID>/   each build in its own folder
#   ~/.local/opt/krea-desktop/current  -> versions/<BUILD_ID>   the build that starts
#   ~/.local/opt/krea-desktop/previous -> versions/<BUILD_ID>   the one before, for rollback
#   ~/.local/opt/krea-desktop/uninstall.sh
#   ~/.local/bin/krea-desktop -> ~/.local/opt/krea-desktop/current/krea-desktop
#   ~/.local/share/applications/ai.krea.KreaDesktop.desktop
#   ~/.local/share/metainfo/ai.krea.KreaDesktop.metainfo.xml
#   ~/.local/share/icons/hicolor/<N>x<N>/apps/ai.krea.KreaDesktop.png
#   ~/.local/share/icons/hicolor/scalable/apps/ai.krea.KreaDesktop.svg
# (~/.local/share is $XDG_DATA_HOME when that is set.)
#
# The new build is copied into its own folder, then `current` is switched to it in one
# step: a copy of the app that is running keeps its own folder, and the next start runs the
# new build. The build that was current stays as `previous` until the next install; older
# builds are removed then, except one still running, which the install after it removes.
# Running install.sh of a build already installed switches back to it (that is how to roll
# back: ~/.local/opt/krea-desktop/previous/install.sh); running it again changes nothing.
# The menu entry offers the app in "Open With" for PNG, JPEG and WEBP files; it does not make
# it the default for them. The library, settings and logs in ~/.local/share/krea-desktop are
# never touched.
#
# Usage: install.sh [BUNDLE]   BUNDLE defaults to the folder holding this script when it is
# a built bundle, else dist/krea-desktop of the source tree.
set -eu

APP_ID=ai.krea.KreaDesktop
here=$(cd "$(dirname "$0")" && pwd)
if [ $# -ge 1 ]; then
  bundle=$1
elif [ -x "$here/krea-desktop" ]; then
  bundle=$here
else
  bundle=$here/../../dist/krea-desktop
fi
if [ ! -x "$bundle/krea-desktop" ] || [ ! -d "$bundle/share/applications" ] || [ ! -f "$bundle/BUILD_ID" ]; then
  echo "install.sh: no built bundle at $bundle; build it with: python packaging/build.py" >&2
  exit 1
fi
bundle=$(cd "$bundle" && pwd -P)
build_id=$(head -n 1 "$bundle/BUILD_ID")
case $build_id in
  "" | .* | *[!A-Za-z0-9._+-]*)
    echo "install.sh: $bundle/BUILD_ID does not hold a build id" >&2
    exit 1
    ;;
esac

data=${XDG_DATA_HOME:-$HOME/.local/share}
case $data in /*) ;; *) data=$HOME/.local/share ;; esac
root=$HOME/.local/opt/krea-desktop
bin=$HOME/.local/bin

new_folders=
# mkdir -p, remembering each folder it creates, so that uninstall.sh can remove it when empty.
make_dir() {
  d=$1
  missing=
  while [ ! -d "$d" ]; do
    missing="$d
$missing"
    d=$(dirname "$d")
  done
  if [ -n "$missing" ]; then
    mkdir -p "$1"
    new_folders="$new_folders$missing"
  fi
}

changed_share=
# Copy $1 to $2 unless $2 already holds the same bytes; the copy replaces $2 in one step.
install_file() {
  if [ -f "$2" ] && cmp -s "$1" "$2"; then
    return 0
  fi
  make_dir "$(dirname "$2")"
  cp "$1" "$2.new.$$"
  chmod 644 "$2.new.$$"
  mv -f "$2.new.$$" "$2"
  changed_share=yes
}

# Point the symbolic link $1 at $2 in one step (rename over the old link).
switch_link() {
  ln -s "$2" "$1.new.$$"
  if ! mv -fT "$1.new.$$" "$1" 2>/dev/null; then
    rm -f "$1"
    mv -f "$1.new.$$" "$1"
  fi
}

# Whether a process of this user runs a program from folder $1.
in_use() {
  for proc in /proc/[0-9]*; do
    exe=$(readlink "$proc/exe" 2>/dev/null) || continue
    case $exe in "$1"/*) return 0 ;; esac
  done
  return 1
}

make_dir "$root/versions"
root=$(cd "$root" && pwd -P)
versions=$root/versions

# An install made before builds had their own folders: it becomes one of them.
if [ -d "$root/_internal" ] && [ ! -e "$root/current" ] && [ ! -e "$versions/legacy" ]; then
  mkdir "$versions/legacy"
  mv "$root/krea-desktop" "$root/_internal" "$versions/legacy/"
  rm -f "$root/uninstall.sh"
  switch_link "$root/current" versions/legacy
fi

# The build, in its own folder: copied beside, then renamed, so no half copy is ever used.
target=$versions/$build_id
if [ ! -d "$target" ]; then
  rm -rf "$versions/.$build_id.partial"
  mkdir "$versions/.$build_id.partial"
  cp -RP "$bundle/." "$versions/.$build_id.partial/"
  mv "$versions/.$build_id.partial" "$target"
fi

# Switch: the current build becomes the previous one, this one the current one.
was_current=$(readlink "$root/current" 2>/dev/null || true)
if [ "$was_current" != "versions/$build_id" ]; then
  if [ -n "$was_current" ] && [ -d "$root/$was_current" ]; then
    switch_link "$root/previous" "$was_current"
  fi
  switch_link "$root/current" "versions/$build_id"
fi
install_file "$target/uninstall.sh" "$root/uninstall.sh"
chmod 755 "$root/uninstall.sh"

# Builds older than the previous one go, unless they are running.
keep_previous=$(readlink "$root/previous" 2>/dev/null || true)
for old in "$versions"/* "$versions"/.*.partial; do
  [ -d "$old" ] || continue
  case $old in
    "$target" | "$root/$keep_previous") continue ;;
  esac
  if in_use "$old"; then
    echo "install.sh: kept $old while a copy of it runs; the next install removes it" >&2
  else
    rm -rf "$old"
  fi
done

# The command, unless something else already owns that name.
make_dir "$bin"
launcher=$root/current/krea-desktop
if [ -L "$bin/krea-desktop" ]; then
  points=$(readlink "$bin/krea-desktop")
  case $points in
    "$root"/* | "$HOME/.local/opt/krea-desktop"/*)
      [ "$points" = "$launcher" ] || switch_link "$bin/krea-desktop" "$launcher"
      ;;
    *)
      if [ -e "$bin/krea-desktop" ]; then
        echo "install.sh: left $bin/krea-desktop as it was (it runs another copy of krea-desktop); the menu entry runs $launcher" >&2
      else
        switch_link "$bin/krea-desktop" "$launcher"
      fi
      ;;
  esac
elif [ ! -e "$bin/krea-desktop" ]; then
  ln -s "$launcher" "$bin/krea-desktop"
else
  echo "install.sh: left $bin/krea-desktop as it was (not a link to this bundle); the menu entry runs $launcher" >&2
fi

# The menu entry runs the launcher by its full path, so it works whatever PATH the desktop has.
# A path with anything but plain characters is quoted as the Desktop Entry spec says: inside
# the quotes, " ` $ and \ escaped with a backslash; then, as for every string value, each
# backslash doubled; and % written %%. The lines are rewritten in the shell, not by sed,
# so that no character of the path (& | in a home folder's name) means anything there.
string_escaped() { printf '%s' "$1" | sed -e 's/\\/\\\\/g'; }
case $launcher in
  *[!A-Za-z0-9/._-]*)
    quoted=$(printf '%s' "$launcher" | sed -e 's/[\\"`$]/\\&/g' -e 's/%/%%/g')
    exec_path="\"$(string_escaped "$quoted")\"" ;;
  *) exec_path=$launcher ;;
esac
try_exec=$(string_escaped "$launcher")
scratch=$(mktemp)
trap 'rm -f "$scratch"' EXIT
while IFS= read -r line || [ -n "$line" ]; do
  case $line in
    Exec=krea-desktop*) printf '%s\n' "Exec=$exec_path${line#Exec=krea-desktop}" ;;
    TryExec=krea-desktop*) printf '%s\n' "TryExec=$try_exec${line#TryExec=krea-desktop}" ;;
    *) printf '%s\n' "$line" ;;
  esac
done < "$target/share/applications/$APP_ID.desktop" > "$scratch"
install_file "$scratch" "$data/applications/$APP_ID.desktop"
install_file "$target/share/metainfo/$APP_ID.metainfo.xml" "$data/metainfo/$APP_ID.metainfo.xml"
for icon in "$target"/share/icons/hicolor/*/apps/$APP_ID.png "$target"/share/icons/hicolor/*/apps/$APP_ID.svg; do
  [ -f "$icon" ] || continue
  size=$(basename "$(dirname "$(dirname "$icon")")")
  install_file "$icon" "$data/icons/hicolor/$size/apps/$(basename "$icon")"
done

if [ -n "$new_folders" ]; then
  printf '%s' "$new_folders" >> "$root/.created-folders"
fi

if [ -n "$changed_share" ]; then
  # Let the menu and "Open With" see it now rather than at next login.
  if command -v update-desktop-database >/dev/null 2>&1; then
    update-desktop-database -q "$data/applications" || true
  fi
  # Only refresh an icon cache that already exists: a new one would hide icons that later
  # installs add without updating it.
  if [ -f "$data/icons/hicolor/icon-theme.cache" ] && command -v gtk-update-icon-cache >/dev/null 2>&1; then
    gtk-update-icon-cache -q -t -f "$data/icons/hicolor" || true
  fi
fi

echo "Installed Krea Desktop $build_id in $target; it is in the application menu as \"Krea Desktop\"."
echo "Run it from a terminal as $bin/krea-desktop; remove it with $root/uninstall.sh."
