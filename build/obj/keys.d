build/obj/keys.o: src/keys.c src/keys.h
src/keys.h:
