from emulators.onoffice.app import main

main()
