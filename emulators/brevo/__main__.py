from emulators.brevo.app import main

main()
