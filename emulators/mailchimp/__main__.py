from emulators.mailchimp.app import main

main()
