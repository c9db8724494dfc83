build/obj/deadletter.o: src/deadletter.c src/deadletter.h
src/deadletter.h:
