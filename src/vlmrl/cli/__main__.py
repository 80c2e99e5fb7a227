from vlmrl.cli import main

main()
