from bounces import main

main()
