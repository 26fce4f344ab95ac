#!/bin/sh
# Remove what install.sh put under ~/.local: every installed build, the `current` and
# `previous` links, the ~/.local/bin/krea-desktop link, the menu entry, metainfo and icons,
# and the folders install.sh created for them once they are empty. Nothing else: the
# library, settings and logs in ~/.local/share/krea-desktop stay (delete that folder
# yourself to remove them). Close Krea Desktop first: a copy still running loses its files.
set -eu

APP_ID=ai.krea.KreaDesktop
data=${XDG_DATA_HOME:-$HOME/.local/share}
case $data in /*) ;; *) data=$HOME/.local/share ;; esac
root=$HOME/.local/opt/krea-desktop
bin=$HOME/.local/bin
physical=$root
if [ -d "$root" ]; then
  physical=$(cd "$root" && pwd -P)
fi

# The folders install.sh created, read before the list goes with the rest.
created=
if [ -f "$root/.created-folders" ]; then
  created=$(cat "$root/.created-folders")
fi

if [ -L "$bin/krea-desktop" ]; then
  case $(readlink "$bin/krea-desktop") in
    "$root"/* | "$physical"/*) rm -f "$bin/krea-desktop" ;;
  esac
fi
rm -f "$data/applications/$APP_ID.desktop"
rm -f "$data/metainfo/$APP_ID.metainfo.xml"
for icon in "$data"/icons/hicolor/*/apps/$APP_ID.png "$data"/icons/hicolor/*/apps/$APP_ID.svg; do
  if [ -e "$icon" ]; then rm -f "$icon"; fi
done
rm -rf "$root" "$root.new"

if command -v update-desktop-database >/dev/null 2>&1 && [ -d "$data/applications" ]; then
  update-desktop-database -q "$data/applications" || true
  # A cache that no longer lists anything is only what installing left behind.
  cache=$data/applications/mimeinfo.cache
  if [ -f "$cache" ] && ! grep -qv -e '^\[MIME Cache\]$' -e '^$' "$cache"; then
    rm -f "$cache"
  fi
fi
if [ -f "$data/icons/hicolor/icon-theme.cache" ] && command -v gtk-update-icon-cache >/dev/null 2>&1; then
  gtk-update-icon-cache -q -t -f "$data/icons/hicolor" || true
fi

# Deepest first; a folder that holds anything else stays.
if [ -n "$created" ]; then
  printf '%s\n' "$created" | sort -r -u | while IFS= read -r folder; do
    if [ -n "$folder" ] && [ -d "$folder" ]; then
      rmdir "$folder" 2>/dev/null || true
    fi
  done
fi

echo "Removed Krea Desktop from $root. Your library and settings are still in $data/krea-desktop."
