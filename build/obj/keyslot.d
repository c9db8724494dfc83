build/obj/keyslot.o: src/keyslot.c src/keyslot.h src/crc16.h
src/keyslot.h:
src/crc16.h:
