build/obj/backoff.o: src/backoff.c src/backoff.h
src/backoff.h:
