from krea_desktop.cli import main

raise SystemExit(main())
